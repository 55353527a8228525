"""Reading inputs: blocks of whole lines, gzip, file identity, rotation order."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logalyse.sources import (
    IDLE_SECONDS,
    MAX_LINE_BYTES,
    ROTATED_IDLE_SECONDS,
    LineBlocks,
    file_info,
    is_finished,
    oldest_first,
    open_content,
    rotation_number,
    stream_reader,
)


def collect(data: bytes, size: int, partial: bool = True) -> tuple[bytes, int, int]:
    """(what the blocks hold, bytes consumed, bytes left unread)."""
    out, used = b"", 0
    blocks = LineBlocks(io.BytesIO(data), size, take_partial=partial)
    for block, consumed in blocks:
        assert bytes(block).endswith(b"\n")
        out += bytes(block)
        used += consumed
    return out, used, blocks.left


@given(
    st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"\xff"]), max_size=300).map(
        b"".join
    )
    | st.binary(max_size=2000),
    st.integers(min_value=1, max_value=64),
    st.booleans(),
)
def test_blocks_hold_every_line_once(data: bytes, size: int, partial: bool) -> None:
    out, used, left = collect(data, size, partial)
    assert used + left == len(data)
    first = data[:size]  # the first block decides: \r-terminated lines?
    if b"\n" not in first and b"\r" in first:
        data = data.replace(b"\r", b"\n")
    whole = data[: len(data) - left]
    assert out == (whole if whole.endswith(b"\n") or not whole else whole + b"\n")
    assert left == 0 if partial else left == len(data) - (data.rfind(b"\n") + 1)


def test_unterminated_last_line_can_wait() -> None:
    assert collect(b"a\nb\nhalf", 3, partial=False) == (b"a\nb\n", 4, 4)


def test_carriage_returns_alone_end_lines() -> None:
    data = b"one\rtwo\rthree\r"
    assert collect(data, 4) == (b"one\ntwo\nthree\n", len(data), 0)
    # \r\n, or a \r inside a line of a \n file, is the parser's business.
    assert collect(b"a\r\nb\rc\n", 64) == (b"a\r\nb\rc\n", 7, 0)


@pytest.mark.parametrize("partial", [True, False])
def test_overlong_line_is_one_line_cut_short(partial: bool) -> None:
    data = b"x" * (MAX_LINE_BYTES + 10) + b"\nok\n" + b"y" * (MAX_LINE_BYTES + 5)
    blocks = LineBlocks(io.BytesIO(data), 1 << 16, take_partial=partial)
    got = [(bytes(b), n) for b, n in blocks]
    assert got[0] == (b"x" * MAX_LINE_BYTES + b"\n", MAX_LINE_BYTES + 11)
    assert b"".join(b for b, _ in got[1:]).startswith(b"ok\n")
    assert sum(n for _, n in got) + blocks.left == len(data)
    lines = b"".join(b for b, _ in got).count(b"\n")
    assert (lines, blocks.left) == ((3, 0) if partial else (2, MAX_LINE_BYTES + 5))


def test_gzip_content_and_stream(tmp_path: Path) -> None:
    path = tmp_path / "access.log.2.gz"
    path.write_bytes(gzip.compress(b"one\ntwo\n") + gzip.compress(b"three\n"))
    with open_content(path) as f:
        assert f.read() == b"one\ntwo\nthree\n"
    reader = stream_reader(io.BytesIO(path.read_bytes()))
    assert b"".join(bytes(b) for b, _ in LineBlocks(reader, 4)) == b"one\ntwo\nthree\n"
    assert reader.complete  # type: ignore[union-attr]


def test_truncated_gzip_keeps_what_was_readable(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    lines = [f"line {i} {i * 7919 % 10007}".encode() for i in range(20000)]
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n")[:-200])
    with open_content(path) as f:
        got = b"".join(bytes(b) for b, _ in LineBlocks(f, 1000)).split(b"\n")[:-1]
        assert not f.complete  # type: ignore[attr-defined]  # no trailer: still being written, or cut
    assert 1000 < len(got) < len(lines)
    assert got[:-1] == lines[: len(got) - 1]  # the last one may be cut


def test_same_content_same_fingerprint_after_rename_and_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "access.log"
    plain.write_bytes(b"first line\n" * 200)
    a = file_info(plain)
    plain.rename(tmp_path / "access.log.1")
    b = file_info(tmp_path / "access.log.1")
    (tmp_path / "access.log.2.gz").write_bytes(
        gzip.compress((tmp_path / "access.log.1").read_bytes())
    )
    c = file_info(tmp_path / "access.log.2.gz")
    assert a.fingerprint == b.fingerprint == c.fingerprint
    assert a.inode == b.inode and c.compressed and not a.compressed


def test_oldest_first(tmp_path: Path) -> None:
    names = ["access.log", "access.log.1", "access.log.2.gz", "access.log.10.gz"]
    for i, n in enumerate(names):
        p = tmp_path / n
        p.write_text("x\n")
        os.utime(p, (1000 + i, 1000 + i))  # mtimes alone would give the wrong order
    assert [p.name for p in oldest_first([tmp_path / n for n in names])] == [
        "access.log.10.gz",
        "access.log.2.gz",
        "access.log.1",
        "access.log",
    ]
    assert rotation_number(Path("x.log-20240506")) == 0


def test_a_gzip_is_complete_only_with_its_trailer(tmp_path: Path) -> None:
    whole = gzip.compress(b"one\ntwo\n")
    for data, complete in [
        (whole, True),
        (whole + b"\0" * 16, True),  # zero padding after the member
        (whole[:-4], False),  # the trailer's length missing: still being written
        (whole + whole[:10], False),  # a second member begun
    ]:
        path = tmp_path / "x.gz"
        path.write_bytes(data)
        with open_content(path) as f:
            list(LineBlocks(f, 64))
            assert f.complete is complete, data  # type: ignore[attr-defined]


def test_a_rotated_file_is_finished_once_idle(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    for name, rotated in [
        ("access.log", False),
        ("access.log.1", True),
        ("access.log.3.gz", True),
        ("access.log-20240506", True),
        ("access.log-2024", False),
    ]:
        p = tmp_path / name
        p.write_text("x\n")
        os.utime(p, (now - ROTATED_IDLE_SECONDS - 1,) * 2)
        assert is_finished(p, now=now) is rotated, name
        os.utime(p, (now - 1,) * 2)
        assert not is_finished(p, now=now)
        os.utime(p, (now - IDLE_SECONDS,) * 2)  # an archived log, whatever its name
        assert is_finished(p, now=now)

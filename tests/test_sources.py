"""Reading inputs: blocks of whole lines, gzip, file identity, rotation order."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from logalyse.sources import (
    MAX_LINE_BYTES,
    batches,
    file_info,
    oldest_first,
    open_content,
    rotation_number,
    stream_reader,
)


def collect(data: bytes, size: int, partial: bool = True) -> tuple[bytes, int]:
    out, used = b"", 0
    for block, consumed in batches(io.BytesIO(data), size, take_partial=partial):
        assert bytes(block).endswith(b"\n")
        out += bytes(block)
        used += consumed
    return out, used


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_blocks_hold_every_line_once(data: bytes, size: int) -> None:
    out, used = collect(data, size)
    assert used == len(data)
    expected = data if data.endswith(b"\n") or not data else data + b"\n"
    assert out == expected


def test_unterminated_last_line_can_wait() -> None:
    out, used = collect(b"a\nb\nhalf", 3, partial=False)
    assert (out, used) == (b"a\nb\n", 4)


def test_overlong_line_is_cut() -> None:
    data = b"x" * (MAX_LINE_BYTES + 10) + b"\nok\n"
    blocks = [bytes(b) for b, _ in batches(io.BytesIO(data), 1 << 16)]
    assert all(len(b) <= MAX_LINE_BYTES + 1 + (1 << 16) for b in blocks)
    assert b"".join(blocks).endswith(b"ok\n")


def test_gzip_content_and_stream(tmp_path: Path) -> None:
    path = tmp_path / "access.log.2.gz"
    path.write_bytes(gzip.compress(b"one\ntwo\n") + gzip.compress(b"three\n"))
    with open_content(path) as f:
        assert f.read() == b"one\ntwo\nthree\n"
    reader = stream_reader(io.BytesIO(path.read_bytes()))
    assert b"".join(bytes(b) for b, _ in batches(reader, 4)) == b"one\ntwo\nthree\n"


def test_truncated_gzip_keeps_what_was_readable(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    lines = [f"line {i} {i * 7919 % 10007}".encode() for i in range(20000)]
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n")[:-200])
    with open_content(path) as f:
        got = b"".join(bytes(b) for b, _ in batches(f, 1000)).split(b"\n")[:-1]
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

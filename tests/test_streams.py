"""Streams (stdin, `docker compose logs`) counted exactly: a replayed line is recognised by
what it is, not by where its time falls, whatever the order and however flushes cut it."""

from __future__ import annotations

import gzip
import io
import os
import random
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

from logalyse.ingest import ImportOptions, StreamInput, ingest
from logalyse.model import IngestStats
from logalyse.store import Store
from logalyse.tail import TailStats, tail

from .conftest import wait_for
from .test_tail import stored

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
T0 = datetime(2026, 11, 1, 10, 0, 0)


def line(second: int, path: str = "/", ip: str = "203.0.113.9") -> str:
    stamp = (T0 + timedelta(seconds=second)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" 200 512 "-" "{FIREFOX}"\n'


def pipe(db: Path, text: str | bytes, **options: object) -> IngestStats:
    """`... | logalyse import -`"""
    data = text.encode() if isinstance(text, str) else text
    with Store(db) as store:
        return ingest(store, [StreamInput(io.BytesIO(data))], ImportOptions(**options))  # type: ignore[arg-type]


def tail_in_chunks(db: Path, chunks: list[str]) -> TailStats:
    """`logalyse tail -` fed one chunk, then the next after each flush, then the end."""
    read_fd, write_fd = os.pipe()
    sent = [chunks[0]]
    os.write(write_fd, chunks[0].encode())
    done = threading.Event()

    def on_flush(stats: object) -> None:
        if len(sent) < len(chunks):
            sent.append(chunks[len(sent)])
            os.write(write_fd, sent[-1].encode())
        if len(sent) == len(chunks) and write_fd >= 0:
            os.close(write_fd)
            sent.append("")  # closed

    watchdog = threading.Timer(60, done.set)  # fail, not hang
    watchdog.start()
    try:
        with Store(db) as store, os.fdopen(read_fd, "rb") as stream:
            return tail(store, stream, every=0.05, stop=done, on_flush=on_flush)
    finally:
        watchdog.cancel()


def rows(
    db: Path, sql: str = "SELECT ts, path FROM requests ORDER BY ALL"
) -> list[tuple[object, ...]]:
    with Store(db, read_only=True) as store:
        return store.query(sql)


def test_a_line_older_than_the_last_flush_is_new(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    stats = tail_in_chunks(db, [line(5, "/a"), line(4, "/b") + line(6, "/c")])
    assert (stats.imported, stats.already) == (3, 0)
    assert [p for _, p in rows(db)] == ["/b", "/a", "/c"]


def test_identical_requests_split_by_a_flush_then_the_stream_again(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    same = line(7, "/same")
    assert tail_in_chunks(db, [same * 2, same]).imported == 3
    again = pipe(db, same * 3)
    assert (again.imported, again.already) == (0, 3)
    more = pipe(db, same * 4)  # one more of them in the replay: that one is new
    assert (more.imported, more.already) == (1, 3)
    assert rows(db, "SELECT count(*) FROM requests") == [(4,)]


def test_a_stream_cut_mid_line_stores_no_half(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    whole = line(1, "/a") + line(2, "/b") + line(3, "/c")
    cut = pipe(db, whole[: -len(line(3, "/c")) + 30])
    assert (cut.imported, cut.malformed, cut.unterminated) == (2, 0, 1)
    replay = pipe(db, whole)
    assert (replay.imported, replay.already, replay.unterminated) == (1, 2, 0)
    assert [p for _, p in rows(db)] == ["/a", "/b", "/c"]


def test_older_lines_piped_after_newer_ones_are_all_stored(tmp_path: Path) -> None:
    """`cat access.log.1 | import -` then `zcat access.log.2.gz | import -`: the second
    stream is older, under the same default name."""
    db = tmp_path / "db.duckdb"
    newer = "".join(line(3600 + i, f"/new{i}") for i in range(3000))
    older = "".join(line(i, f"/old{i}") for i in range(3000))
    assert pipe(db, newer).imported == 3000
    second = pipe(db, gzip.compress(older.encode()))
    assert (second.imported, second.already) == (3000, 0)
    assert pipe(db, newer + older).imported == 0


def test_out_of_order_stream_over_many_flushes_then_replayed(tmp_path: Path) -> None:
    """nginx logs in completion order: times go back by a few seconds, often."""
    rng = random.Random(7)
    seconds = sorted(i // 3 + rng.choice([0, 0, 0, -1, -2, -5]) for i in range(3000))
    order = list(range(3000))
    for i in range(0, 2990, 3):  # swap neighbours: inversions
        if rng.random() < 0.3:
            order[i], order[i + 1] = order[i + 1], order[i]
    text = [line(max(0, seconds[i]), f"/p{i % 50}", ip=f"203.0.113.{i % 7}") for i in order]
    cuts = sorted(rng.sample(range(1, 3000), 12))
    chunks = ["".join(text[a:b]) for a, b in zip([0, *cuts], [*cuts, 3000], strict=True)]
    db = tmp_path / "db.duckdb"
    assert tail_in_chunks(db, chunks).imported == 3000
    assert pipe(db, "".join(text)).imported == 0
    replay = pipe(db, "".join(text[:1000]) + line(1, "/late-new") + "".join(text[1000:]))
    assert (replay.imported, replay.already) == (1, 3000)
    assert rows(db, "SELECT count(*), count(DISTINCT (source_id, line_no)) FROM requests") == [
        (3001, 3001)
    ]


def test_error_lines_of_a_replayed_history_are_not_counted_again(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    history = (
        "/docker-entrypoint.sh: Configuration complete; ready for start up\n"
        + line(1, "/a")
        + "2026/11/01 10:00:02 [error] 29#29: *1 open() failed\n"
        + line(3, "/b")
    )
    first = pipe(db, history)
    assert (first.imported, first.nonaccess) == (2, 2)
    again = pipe(db, history + line(4, "/c"))
    assert (again.imported, again.already, again.nonaccess, again.lines_read) == (1, 4, 0, 5)


def test_tail_of_a_pipe_stores_a_line_older_than_its_last_flush(tmp_path: Path) -> None:
    """`(L@10:00:05; sleep 4; L@10:00:04; L@10:00:06) | logalyse tail --every 1s -`"""
    db = tmp_path / "db.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-m", "logalyse", "--db", str(db), "tail", "--every", "1s", "-"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(line(5, "/a").encode())
    proc.stdin.flush()
    wait_for(lambda: stored(db) == 1)  # flushed: the next lines come after
    _, err = proc.communicate((line(4, "/b") + line(6, "/c")).encode(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "stored 3 lines" in err.decode() and "0 already imported" in err.decode()
    assert stored(db) == 3

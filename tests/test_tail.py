"""`logalyse tail`, run as users run it: a real process following a real file through
logrotate, a stream ending, SIGTERM, reports from another process, a restart."""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from logalyse.errors import ExitCode
from logalyse.ingest import ImportOptions, ingest
from logalyse.store import Store
from logalyse.tail import tail

from .conftest import wait_for

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
EVERY = "1s"


def line(n: int) -> str:
    """The n-th line of a live log: distinct path and second, so rotations can't confuse them."""
    h, m, s = n // 3600 % 24, n // 60 % 60, n % 60
    return (
        f"203.0.113.{n % 250 + 1} - - [01/Nov/2026:{h:02d}:{m:02d}:{s:02d} +0000] "
        f'"GET /page/{n} HTTP/1.1" 200 512 "-" "{FIREFOX}"\n'
    )


def append(path: Path, first: int, last: int) -> None:
    with open(path, "a") as f:
        f.write("".join(line(n) for n in range(first, last + 1)))


def stored(db: Path) -> int:
    """Rows in the store, read as a report would (waiting for the writer's flush)."""
    if not db.exists():
        return 0
    with Store(db, read_only=True, lock_timeout=10) as store:
        return int(store.query("SELECT count(*) FROM requests")[0][0])


def unread(pipe: IO[bytes]) -> int:
    """Bytes written to a pipe that its reader has not read yet."""
    got = fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0" * 4)
    return int(struct.unpack("i", got)[0])


class Opens:
    """The moments a file is opened, by any process (Linux's inotify)."""

    IN_OPEN = 0x20

    def __init__(self, path: Path) -> None:
        self.path = path
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(path), self.IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {path}")

    def next(self, timeout: float = 30.0) -> float:
        """Wait for the file to be opened again; return when (time.monotonic())."""
        if not select.select([self.fd], [], [], timeout)[0]:
            raise AssertionError(f"{self.path} was not opened for {timeout}s")
        os.read(self.fd, 1 << 16)  # every event so far: one open or many, it is "opened"
        return time.monotonic()

    def close(self) -> None:
        os.close(self.fd)


def logalyse(*args: str, **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[no-any-return,call-overload,unused-ignore]
        [sys.executable, "-m", "logalyse", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def run(db: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """`logalyse --db DB ARGS...` to its end, as a shell runs it."""
    return subprocess.run(
        [sys.executable, "-m", "logalyse", "--db", str(db), *args],
        input=None if stdin is None else stdin.encode(),
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def follow(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `logalyse tail` on tmp/access.log (or given args); stopped at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **kw: object) -> subprocess.Popen[bytes]:
        target = args or (str(tmp_path / "access.log"),)
        p = logalyse("--db", str(tmp_path / "db.duckdb"), "tail", "--every", EVERY, *target, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def stop(p: subprocess.Popen[bytes]) -> str:
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err.decode()
    return err.decode()


def test_follows_logrotate_create_mode(
    tmp_path: Path, follow: Callable[..., subprocess.Popen[bytes]]
) -> None:
    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    p = follow()  # the file does not exist yet
    # The tail looks for the file (and says it is not there: checked below), then opens its store.
    wait_for(db.exists, what="the tail to open its store")
    append(log, 1, 100)
    wait_for(lambda: stored(db) == 100)
    # logrotate (create): rename, nginx still writes a few lines to the old file, then the
    # new file appears (nginx reopened its logs).
    log.rename(tmp_path / "access.log.1")
    append(tmp_path / "access.log.1", 101, 120)
    append(log, 121, 150)
    wait_for(lambda: stored(db) == 150)
    append(log, 151, 160)
    wait_for(lambda: stored(db) == 160)
    err = stop(p)
    assert "(not there yet: waiting for it)" in err
    assert "1 rotation followed" in err
    assert stored(db) == 160
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(DISTINCT path) FROM requests") == [(160,)]
    # A later import of every file adds nothing: tail and import share checkpoints.
    out = run(db, "import", *map(str, tmp_path.glob("access.log*")))
    assert out.returncode == 0 and "imported 0 lines" in out.stderr.decode()


def test_follows_logrotate_copytruncate(
    tmp_path: Path, follow: Callable[..., subprocess.Popen[bytes]]
) -> None:
    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    append(log, 1, 50)
    p = follow()
    wait_for(lambda: stored(db) == 50)
    # copytruncate: lines written just before the copy are only in the copy once the
    # original is truncated; tail takes them from there.
    append(log, 51, 60)
    copy = tmp_path / "access.log.1"
    copy.write_bytes(log.read_bytes())
    with open(log, "r+") as f:
        f.truncate(0)
    append(log, 61, 75)
    wait_for(lambda: stored(db) == 75)
    err = stop(p)
    assert "1 rotation followed" in err
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(DISTINCT path) FROM requests") == [(75,)]


def test_sigterm_stores_what_arrived_and_exits_0(tmp_path: Path) -> None:
    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    append(log, 1, 10)
    p = logalyse("--db", str(db), "tail", "--every", "1h", str(log))
    wait_for(lambda: stored(db) == 10)  # the first pass is immediate
    append(log, 11, 25)  # not stored before an hour... or a SIGTERM
    assert stored(db) == 10
    err = stop(p)
    assert stored(db) == 25
    # The first pass, then the one SIGTERM made: none in between.
    assert "stored 25 lines in 2 flushes" in err


def test_stream_is_read_until_it_ends(tmp_path: Path) -> None:
    """docker compose logs -f piped in: prefixes, timestamps, error lines; EOF ends it."""
    db = tmp_path / "db.duckdb"
    stream = "".join(
        f"nginx-1  | 2026-11-01T10:00:{n:02d}.000000000Z {line(n)}" for n in range(1, 41)
    )
    stream += "nginx-1  | 2026/11/01 10:00:41 [error] 29#29: *1 open() failed\n"
    stream += "nginx-1  | /docker-entrypoint.sh: Configuration complete; ready for start up\n"
    stream += "".join(
        f"nginx-1  | 2026-11-01T10:01:{n:02d}.000000000Z {line(n + 100)}" for n in range(10)
    )
    r = run(db, "tail", "--every", EVERY, "-", stdin=stream)
    assert r.returncode == 0, r.stderr.decode()
    assert stored(db) == 50
    assert "2 non-access" in r.stderr.decode()
    # The same stream again (docker compose logs replays history): nothing twice.
    again = run(db, "tail", "-", stdin=stream)
    assert again.returncode == 0
    assert stored(db) == 50


def test_stream_is_stored_as_it_comes_and_on_sigterm(
    tmp_path: Path, follow: Callable[..., subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "db.duckdb"
    p = follow("-", stdin=subprocess.PIPE)
    pipe = p.stdin
    assert pipe is not None
    pipe.write("".join(line(n) for n in range(1, 21)).encode())
    pipe.flush()
    wait_for(lambda: stored(db) == 20)  # stored while the stream is still open
    pipe.write("".join(line(n) for n in range(21, 31)).encode())
    pipe.flush()
    # SIGTERM stores what arrived: once the tail has read these lines off the pipe.
    wait_for(lambda: unread(pipe) == 0, what="the tail to read the pipe")
    stop(p)
    assert stored(db) == 30


def test_reports_run_while_tail_runs(
    tmp_path: Path, follow: Callable[..., subprocess.Popen[bytes]]
) -> None:
    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    append(log, 1, 20)
    p = follow()
    wait_for(lambda: stored(db) == 20)
    seen = []
    for k in range(5):
        append(log, 21 + 10 * k, 30 + 10 * k)
        r = run(db, "report", "overview", "--json")
        assert r.returncode == 0, r.stderr.decode()
        seen.append(int(json.loads(r.stdout)["requests"]))
    stop(p)
    assert seen == sorted(seen) and 20 <= seen[0] and seen[-1] <= 70
    assert stored(db) == 70


def test_restart_resumes_where_it_stopped(
    tmp_path: Path, follow: Callable[..., subprocess.Popen[bytes]]
) -> None:
    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    append(log, 1, 30)
    p = follow()
    wait_for(lambda: stored(db) == 30)
    stop(p)
    append(log, 31, 45)  # while nothing runs
    p = follow()
    wait_for(lambda: stored(db) == 45)
    append(log, 46, 50)
    wait_for(lambda: stored(db) == 50)
    err = stop(p)
    assert "stored 20 lines" in err and "30 already imported" in err
    assert stored(db) == 50


def test_an_import_while_tail_runs_exits_locked(
    tmp_path: Path, follow: Callable[..., subprocess.Popen[bytes]]
) -> None:
    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    append(log, 1, 10)
    p = follow()
    wait_for(lambda: stored(db) == 10)
    r = run(db, "import", "--lock-timeout", "0.5", str(log))
    assert r.returncode == ExitCode.LOCKED
    assert "another" in r.stderr.decode()
    stop(p)
    assert stored(db) == 10


def test_tail_closes_days_by_the_wall_clock(tmp_path: Path) -> None:
    """A quiet night: no newer line arrives, yet yesterday's key is destroyed."""
    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    append(log, 1, 5)  # 1 November 2026, long past
    done = threading.Event()

    def on_flush(stats: object) -> None:
        if getattr(stats, "flushes", 0) >= 2:  # the lines, then a quiet pass
            done.set()

    with Store(db) as store:
        stats = tail(store, log, ImportOptions(), every=0.05, stop=done, on_flush=on_flush)
        assert stats.days_closed == ["2026-11-01"]
        assert store.query("SELECT closed_at IS NOT NULL FROM day_keys") == [(True,)]
    # An import, by contrast, keeps the key while no newer line says the day is over.
    other = tmp_path / "other.duckdb"
    with Store(other) as store:
        assert ingest(store, [log]).days_closed == []


def test_tail_memory_holds_totals_not_flushes(tmp_path: Path) -> None:
    """Per-input totals, not a list growing with every flush."""
    log = tmp_path / "access.log"
    append(log, 1, 3)
    stop_after = threading.Event()
    flushes = []

    def on_flush(stats: object) -> None:
        flushes.append(1)
        if len(flushes) >= 5:
            stop_after.set()

    with Store(tmp_path / "db.duckdb") as store:
        stats = tail(store, log, every=0.01, stop=stop_after, on_flush=on_flush)
    assert stats.flushes >= 5 and len(stats.sources) == 1 and stats.imported == 3


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_a_rotated_file_moved_away_is_read_through_its_descriptor(
    tmp_path: Path, follow: Callable[..., subprocess.Popen[bytes]]
) -> None:
    log, db = tmp_path / "logs" / "access.log", tmp_path / "db.duckdb"
    log.parent.mkdir()
    append(log, 1, 10)
    p = follow(str(log))
    wait_for(lambda: stored(db) == 10)
    elsewhere = tmp_path / "archive.log"
    os.rename(log, elsewhere)
    append(elsewhere, 11, 15)
    append(log, 16, 20)
    wait_for(lambda: stored(db) == 20)
    stop(p)


def test_top_shows_the_last_minutes(tmp_path: Path) -> None:
    """`top` in a pipe prints one view; its numbers are those of the window."""
    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    append(log, 1, 400)  # 00:00:01 to 00:06:40; the last 5 minutes: lines 101-400
    with Store(db) as store:
        ingest(store, [log])
    r = run(db, "top", "--json")
    assert r.returncode == 0, r.stderr.decode()
    doc = json.loads(r.stdout)
    assert doc["now"]["requests"] == 300 and doc["now"]["pageviews"] == 300
    assert doc["now"]["requests_per_second"] == 1.0
    assert sum(m["requests"] for m in doc["minutes"]) == 300
    table = run(db, "top")
    assert b"Requests/s" in table.stdout and b"\x1b" not in table.stdout


def test_top_refreshes_in_place_on_a_terminal(tmp_path: Path) -> None:
    import pty

    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    append(log, 1, 50)
    with Store(db) as store:
        ingest(store, [log])
    pid, fd = pty.fork()
    if pid == 0:  # the child: logalyse on a terminal
        os.execve(
            sys.executable,
            [sys.executable, "-m", "logalyse", "--db", str(db), "top", "--every", "0.2"],
            {**os.environ, "TERM": "xterm-256color"},  # make test says TERM=unknown (dumb)
        )
    out = b""
    deadline = time.monotonic() + 90
    try:
        while out.count(b"Requests/s") < 3 and time.monotonic() < deadline:
            if not select.select([fd], [], [], 0.5)[0]:
                continue
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    finally:
        os.kill(pid, signal.SIGINT)
        # Read to the end (a full terminal buffer would block its last frame), but not
        # forever: a top that ignored Ctrl-C is killed and fails the test.
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    if not os.read(fd, 65536):
                        break
                except OSError:
                    break
            else:
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = code
                    break
        else:
            os.kill(pid, signal.SIGKILL)
        if status is None:
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert out.count(b"Requests/s") >= 3  # redrawn...
    assert b"\x1b[" in out and b"\x1b[2K" in out  # ...in place (cursor up, erase line)
    assert os.waitstatus_to_exitcode(status) == 0  # Ctrl-C is how one leaves top


@pytest.mark.skipif(sys.platform != "linux", reason="watches the tail with inotify")
def test_a_reader_holding_the_database_delays_a_flush_not_kills_it(
    tmp_path: Path, follow: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """--lock-timeout is for another writer; readers only make a flush wait."""
    import duckdb

    log, db = tmp_path / "access.log", tmp_path / "db.duckdb"
    append(log, 1, 10)
    p = follow("--lock-timeout", "0.5", str(log))
    wait_for(lambda: stored(db) == 10)
    # A long report, say, that gets in between the tail's units of work (after a flush
    # the tail holds the file a moment longer, to remake sessions and close days).
    held: list[duckdb.DuckDBPyConnection] = []

    def get_in() -> bool:
        try:
            held.append(duckdb.connect(str(db), read_only=True))
        except duckdb.IOException:
            return False
        return True

    wait_for(get_in, timeout=10)
    con = held[0]
    opens = Opens(db)
    try:
        append(log, 11, 20)
        # The tail's next pass finds the file held and tries to open it again and again:
        # still trying four times its --lock-timeout after its first try, it still runs.
        first = opens.next()
        while opens.next() < first + 4 * 0.5:
            pass
        assert p.poll() is None
        assert con.execute("SELECT count(*) FROM requests").fetchall() == [(10,)]
    finally:
        opens.close()
        con.close()
    wait_for(lambda: stored(db) == 20)
    stop(p)


def test_a_replayed_stream_keeps_its_day_keys_between_flushes(tmp_path: Path) -> None:
    """Old lines coming in over several flushes (docker compose logs replaying history):
    the day is closed by the data, not by the clock after the first flush, so the same
    visitor keeps one id and no line counts as late."""
    db = tmp_path / "db.duckdb"
    read_fd, write_fd = os.pipe()
    first = line(1) + line(2)  # 1 November 2026, long past by the clock
    later = line(251)  # line 1's visitor (same address and browser), four minutes on
    flushes: list[int] = []
    done = threading.Event()

    def on_flush(stats: object) -> None:
        flushes.append(1)
        if len(flushes) == 1:
            os.write(write_fd, later.encode())  # arrives after the first flush
            os.close(write_fd)

    os.write(write_fd, first.encode())
    watchdog = threading.Timer(30, done.set)  # fail, not hang, if no flush ever comes
    watchdog.start()
    with Store(db) as store, os.fdopen(read_fd, "rb") as stream:
        stats = tail(store, stream, every=0.2, stop=done, on_flush=on_flush)
    watchdog.cancel()
    with Store(db) as store:
        assert stats.imported == 3 and stats.late == 0 and len(flushes) >= 2
        assert store.query("SELECT count(DISTINCT visitor_id) FROM requests") == [(2,)]
        assert store.query("SELECT sum(late_lines) FROM day_keys") == [(0,)]


def test_renewing_the_instance_at_every_flush_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """A long tail starts afresh every minute (new DuckDB instance, empty caches); here at
    every flush. A stream arriving over many flushes, with an identical request in the
    same second on both sides of each flush, stores what one import of it all stores."""
    # Chunk i repeats chunk i-1's last line first: the same request again, same second.
    chunks = [
        (line(10 * i - 1) if i else "") + "".join(line(n) for n in range(10 * i, 10 * i + 10))
        for i in range(6)
    ]
    read_fd, write_fd = os.pipe()
    sent: list[str] = []
    done = threading.Event()

    def on_flush(stats: object) -> None:
        if len(sent) < len(chunks):
            sent.append(chunks[len(sent)])
            os.write(write_fd, sent[-1].encode())
            if len(sent) == len(chunks):
                os.close(write_fd)

    watchdog = threading.Timer(60, done.set)  # fail, not hang
    watchdog.start()
    db = tmp_path / "tail.duckdb"
    with Store(db) as store, os.fdopen(read_fd, "rb") as stream:
        try:
            stats = tail(store, stream, every=0.1, stop=done, on_flush=on_flush, renew_seconds=0)
        finally:
            if len(sent) < len(chunks):
                os.close(write_fd)  # after an error: let the reading thread end
    watchdog.cancel()
    log = tmp_path / "whole.log"
    log.write_text("".join(chunks))
    with Store(tmp_path / "import.duckdb") as store:
        ingest(store, [log])
    rows = "SELECT ts, path, status FROM requests ORDER BY ALL"
    counts = "SELECT count(*), count(DISTINCT visitor_id) FROM requests"
    with Store(db) as tailed, Store(tmp_path / "import.duckdb") as imported:
        assert stats.renewals >= len(chunks) and stats.imported == 65
        assert tailed.query(rows) == imported.query(rows)
        assert tailed.query(counts) == imported.query(counts) == [(65, 60)]
        assert tailed.query("SELECT count(*) FROM sessions") == imported.query(
            "SELECT count(*) FROM sessions"
        )

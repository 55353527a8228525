"""Real processes: kill -9 in the middle of an import, overlapping imports, reading meanwhile.

The moments are chosen, not timed: the child processes are `logalyse import` with a hook
that kills it at its k-th commit (KILLER, from test_log_life) or holds it there (HOLDER).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from logalyse.errors import ExitCode
from logalyse.loggen import write_log
from logalyse.store import Store, sessionise_sql

from .conftest import wait_for
from .test_log_life import KILLER

LINES = 300_000
#: Requests per commit in the children: every line of the generated log is a request, and
#: a batch (BATCH_BYTES, some 4,300 lines) is less than a row group, so that each commit
#: stores exactly ROW_GROUP lines.
ROW_GROUP = 10_000
BATCH_BYTES = 1 << 20

#: `logalyse import` that, after its first commit (which lets go of the database file: here
#: after every commit), creates the file argv[1] and waits for its stdin to close, still
#: holding the writers' lock.
HOLDER = """
import os, sys
import logalyse.cli.ingest as c
import logalyse.ingest.commit as m
import logalyse.ingest.options as limits
limits.ROW_GROUP_ROWS = {row_group}
limits.HOLD_SECONDS = 0
marker = sys.argv.pop(1)
commit = m.Committer.commit
def commit_then_wait(self, job):
    commit(self, job)  # and, held for HOLD_SECONDS, let go of the file
    if not os.path.exists(marker):
        open(marker, "w").close()
        sys.stdin.read()
m.Committer.commit = commit_then_wait
sys.argv = ["logalyse"] + sys.argv[1:]
c.cli()
"""


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "access.log"
    with open(path, "wb") as f:
        write_log(f, LINES, seed=42, days=3)
    return path


def logalyse(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "logalyse", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def totals(db: Path) -> tuple[int, int, int]:
    """Requests stored, distinct (input, line) among them, and the last line stored."""
    with Store(db, read_only=True) as store:
        n, distinct, top = store.query(
            "SELECT count(*), count(DISTINCT (source_id, line_no)), coalesce(max(line_no), 0) FROM requests"
        )[0]
    return int(n), int(distinct), int(top)


def checkpoint(db: Path) -> int:
    """Lines of the log the store says it has imported (0 before the first commit)."""
    with Store(db, read_only=True) as store:
        return int(store.query("SELECT coalesce(sum(lines), 0) FROM sources")[0][0])


@pytest.mark.slow
def test_kill_9_at_a_commit_then_rerun_imports_each_line_once(
    big_log: Path, tmp_path: Path
) -> None:
    db = tmp_path / "db.duckdb"
    done = 0
    # Each run resumes from the last checkpoint. Killed inside its k-th commit's
    # transaction, it leaves k - 1 commits stored; just after it, k.
    for where, k in [
        ("in-commit", 1),
        ("after-commit", 1),
        ("after-commit", 2),
        ("in-commit", 3),
        ("after-commit", 3),
    ]:
        code = KILLER.format(row_group=ROW_GROUP, batch_bytes=BATCH_BYTES, where=where, k=k)
        run = subprocess.run(
            [sys.executable, "-c", code, "--db", str(db), "import", "-q", str(big_log)],
            capture_output=True,
            timeout=300,
        )
        assert run.returncode == -9, (where, k, run.stderr.decode())
        done += (k if where == "after-commit" else k - 1) * ROW_GROUP
        assert checkpoint(db) == done, (where, k)
        # Every line up to the checkpoint, once; none after it.
        assert totals(db) == (done, done, done), (where, k)
    rerun = logalyse("--db", str(db), "import", str(big_log))
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    assert f"imported {LINES - done:,} lines".encode() in err
    assert f"{done:,} already imported".encode() in err
    assert totals(db) == (LINES, LINES, LINES)
    # Sessions a kill left stale were made again by the completing run.
    fresh = sessionise_sql()
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(*) FROM meta WHERE key = 'sessions_dirty'") == [(0,)]
        assert store.query(f"SELECT count(*) FROM ({fresh} EXCEPT ALL FROM sessions)") == [(0,)]
        assert store.query(f"SELECT count(*) FROM (FROM sessions EXCEPT ALL {fresh})") == [(0,)]
    again = logalyse("--db", str(db), "import", str(big_log))
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err.decode()
    assert b"imported 0 lines" in err and f"{LINES:,} already imported".encode() in err


def lock_is_held(db: Path) -> bool:
    fd = os.open(f"{db}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


@pytest.mark.slow
def test_second_import_waits_then_fails_with_its_own_code(big_log: Path, tmp_path: Path) -> None:
    db, marker = tmp_path / "db.duckdb", tmp_path / "first-commit"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(row_group=ROW_GROUP), str(marker)]
        + ["--db", str(db), "import", "-q", str(big_log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: marker.exists() or first.poll() is not None, timeout=120)
        assert first.poll() is None, first.communicate()[1].decode()
        assert lock_is_held(db)
        second = logalyse("--db", str(db), "import", "--lock-timeout", "0.3", str(big_log))
        _, err = second.communicate(timeout=60)
        assert second.returncode == ExitCode.LOCKED, err.decode()
        assert b"another import or tail is writing" in err
        assert b"Traceback" not in err
        # Meanwhile a reader gets in (the importer lets go of the file between commits)
        # and sees the first commit, whole.
        with Store(db, read_only=True, lock_timeout=15) as store:
            assert store.query("SELECT count(*) FROM requests") == [(ROW_GROUP,)]
            assert store.query("SELECT sum(lines) FROM sources") == [(ROW_GROUP,)]
    finally:
        _, err = first.communicate(timeout=300)  # closes its stdin: it goes on
    assert first.returncode == 0, err.decode()
    assert totals(db) == (LINES, LINES, LINES)

"""A model of a log's life, driven by hypothesis: nginx appends (sometimes half a line),
logrotate rotates (create or copytruncate) and compresses, cron imports (and is killed -9
at a commit), a docker compose stream is piped again and again. After every step the
store holds each complete line exactly once, or (after a kill) at most once.

`make test` runs a few short lives; `make fuzz` (LOGALYSE_FUZZ=N) runs many more.
"""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import logalyse.ingest.options as limits
from logalyse.ingest import ImportOptions, StreamInput, ingest
from logalyse.store import Store

from .conftest import fuzz_examples

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
T0 = datetime(2026, 11, 1, 10, 0, 0)
#: Tiny batches and row groups, so that a small log makes many commits to be killed at.
BATCH_BYTES = 1500
ROW_GROUP = 7

#: A real `logalyse import` process that SIGKILLs itself at a chosen moment: inside the
#: k-th commit's transaction (before COMMIT), just after it, or before the sessions.
KILLER = """
import dataclasses, os, signal, sys
import logalyse.cli.ingest as c
import logalyse.ingest.commit as m
import logalyse.ingest.importer as i
import logalyse.ingest.options as limits
limits.ROW_GROUP_ROWS = {row_group}
options = c._import_options
c._import_options = lambda p: dataclasses.replace(options(p), batch_bytes={batch_bytes})
where, k = {where!r}, {k}
seen = [0]
def die():
    os.kill(os.getpid(), signal.SIGKILL)
write, commit, remake = m.write_checkpoint, m.Committer.commit, i.remake_dirty_sessions
def write_then_die(db, job):
    write(db, job)
    seen[0] += 1
    if where == "in-commit" and seen[0] == k:
        die()
def commit_then_die(self, job):
    commit(self, job)
    if where == "after-commit" and seen[0] == k:
        die()
def die_first(db):
    if where == "before-sessions":
        die()
    remake(db)
m.write_checkpoint, m.Committer.commit, i.remake_dirty_sessions = (
    write_then_die, commit_then_die, die_first)
sys.argv = ["logalyse"] + sys.argv[1:]
c.cli()
"""


def access_line(n: int) -> str:
    stamp = (T0 + timedelta(seconds=7 * n)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'203.0.113.{n % 200 + 1} - - [{stamp}] "GET /p/{n} HTTP/1.1" 200 {n} "-" "{FIREFOX}"\n'


def compose_line(n: int) -> str:
    # A few seconds back now and then: nginx logs in completion order.
    stamp = (T0 + timedelta(seconds=3 * n - (n % 4 == 3) * 5)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'nginx-1  | 198.51.100.{n % 50 + 1} - - [{stamp}] "GET /s/{n % 9} HTTP/1.1" 200 5 "-" "{FIREFOX}"\n'


class LogLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="loglife-"))
        self.db = self.dir / "db.duckdb"
        self.log = self.dir / "access.log"
        self.log.touch()
        self.written = 0  # complete lines nginx wrote, over all files
        self.partial = ""  # the unterminated rest of the line being written, if any
        self.history: list[str] = []  # what `docker compose logs` prints
        self.killed = False  # a kill since the last whole import
        self.stream_piped = 0  # history lines as of the last whole pipe

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- nginx and logrotate --------------------------------------------------------

    def _write(self, text: str) -> None:
        with open(self.log, "a") as f:
            f.write(text)

    @rule(k=st.integers(1, 25))
    def append(self, k: int) -> None:
        lines = "".join(access_line(self.written + i) for i in range(k))
        self._write(lines[len(self.partial) :])  # the rest of a half-written line first
        self.written += k
        self.partial = ""

    @precondition(lambda self: not self.partial)
    @rule(k=st.integers(0, 10), cut=st.integers(1, 80))
    def append_half(self, k: int, cut: int) -> None:
        lines = "".join(access_line(self.written + i) for i in range(k))
        nxt = access_line(self.written + k)
        self._write(lines + nxt[:cut])
        self.written += k
        self.partial = nxt[:cut]  # `append` writes the rest of it first

    def _shift(self) -> None:
        rotated = sorted(
            (p for p in self.dir.glob("access.log.*")),
            key=lambda p: int(p.name.split(".")[2]),
            reverse=True,
        )
        for p in rotated:
            n = int(p.name.split(".")[2])
            p.rename(self.dir / p.name.replace(f".{n}", f".{n + 1}", 1))

    @precondition(lambda self: not self.partial)
    @rule()
    def rotate_create(self) -> None:
        self._shift()
        self.log.rename(self.dir / "access.log.1")
        self.log.touch()

    @precondition(lambda self: not self.partial)
    @rule()
    def rotate_copytruncate(self) -> None:
        self._shift()
        shutil.copyfile(self.log, self.dir / "access.log.1")
        with open(self.log, "r+") as f:
            f.truncate(0)

    @precondition(lambda self: any(self.dir.glob("access.log.[0-9]")))
    @rule(data=st.data())
    def compress(self, data: st.DataObject) -> None:
        plain = sorted(self.dir.glob("access.log.[0-9]*"))
        plain = [p for p in plain if not p.name.endswith(".gz")]
        if not plain:
            return
        p = data.draw(st.sampled_from(plain))
        Path(str(p) + ".gz").write_bytes(gzip.compress(p.read_bytes()))
        p.unlink()

    # -- cron ---------------------------------------------------------------------

    def _files(self) -> list[Path]:
        return sorted(self.dir.glob("access.log*"))

    def _stored(self, kind: str) -> tuple[int, int]:
        with Store(self.db, read_only=True) as store:
            n, distinct = store.query(
                "SELECT count(*), count(DISTINCT (r.source_id, r.line_no)) FROM requests r "
                "JOIN sources s ON r.source_id = s.id WHERE s.kind = ?",
                [kind],
            )[0]
        return int(n), int(distinct)

    @rule()
    def import_all(self) -> None:
        with Store(self.db) as store:
            stats = ingest(store, self._files(), ImportOptions(batch_bytes=BATCH_BYTES))
        for s in stats.sources:
            assert s.lines_read == s.imported + s.already + s.malformed + s.nonaccess, s
            assert s.malformed == 0, s
        assert self._stored("file") == (self.written, self.written)
        assert stats.unterminated == (1 if self.partial else 0)
        self.killed = False

    @rule(
        where=st.sampled_from(["in-commit", "after-commit", "before-sessions"]),
        k=st.integers(1, 4),
    )
    def import_killed(self, where: str, k: int) -> None:
        code = KILLER.format(row_group=ROW_GROUP, batch_bytes=BATCH_BYTES, where=where, k=k)
        proc = subprocess.run(
            [sys.executable, "-c", code, "--db", str(self.db), "import", "-q"]
            + [str(p) for p in self._files()],
            capture_output=True,
            timeout=120,
        )
        assert proc.returncode in (0, -9), proc.stderr.decode()
        self.killed = True

    # -- docker compose logs | logalyse import - ----------------------------------

    @rule(k=st.integers(0, 20), cut=st.integers(0, 40))
    def pipe_compose_logs(self, k: int, cut: int) -> None:
        """The whole history again, k lines longer, perhaps cut mid-line."""
        n = len(self.history)
        self.history += [compose_line(n + i) for i in range(k)]
        text = "".join(self.history) + (compose_line(n + k)[:cut] if cut else "")
        with Store(self.db) as store:
            stats = ingest(store, [StreamInput(io.BytesIO(text.encode()))])
        (s,) = stats.sources
        assert s.lines_read == len(self.history)
        assert (s.imported, s.already) == (k, n)
        assert s.unterminated == (1 if cut else 0)
        assert self._stored("stream") == (len(self.history), len(self.history))

    # -- always -------------------------------------------------------------------

    @invariant()
    def never_twice(self) -> None:
        if not self.db.exists():
            return
        for kind in ("file", "stream"):
            n, distinct = self._stored(kind)
            assert n == distinct
        assert self._stored("file")[0] <= self.written


@pytest.fixture(autouse=True)
def _small_row_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "ROW_GROUP_ROWS", ROW_GROUP)


LogLife.TestCase.settings = settings(
    max_examples=fuzz_examples(8),
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
test_a_log_s_life = pytest.mark.slow(LogLife.TestCase)

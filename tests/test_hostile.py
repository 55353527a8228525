"""The attacker's corpus: addresses hidden inside requests, control characters and markup in
every field, symlinks planted beside the database, values that overflow, SQL in a flag.
Nothing identifying is stored or printed, nothing hostile reaches a screen raw, and every
error is one clear line with its documented exit code."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from logalyse.cli import REPORT_HELP, cli
from logalyse.errors import ConfigError, ExitCode
from logalyse.ingest import ingest
from logalyse.scope import Scope
from logalyse.store import Store

from .conftest import files_under

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


def entry(i: int, request: str, ref: str = "-", ua: str = FIREFOX, status: int = 200) -> str:
    return (
        f'198.51.100.{i} - - [01/Nov/2026:10:{i // 60:02}:{i % 60:02} +0000] "{request}" '
        f'{status} 5 "{ref}" "{ua}"\n'
    )


#: Addresses hidden in request text (each, in every form a log writes it).
HIDDEN = [
    entry(1, "GET http://203.0.113.9:12542/x HTTP/1.1", status=404),  # proxy probe
    entry(2, "CONNECT 203.0.113.5:80 HTTP/1.1", status=400),
    entry(
        3,
        "GET /x HTTP/1.1",
        ua="Mozilla/5.0 (compatible; DNSResearchBot/2.1; +http://203.0.113.10)",
    ),
    entry(4, "GET /y HTTP/1.1", ref="http://203.0.113.11/page"),
    entry(5, "GET http://[2001:db8::5]:8080/p HTTP/1.1", status=404),
    entry(6, "GET /who?utm_source=2001:db8::6&ref=203.0.113.12 HTTP/1.1"),
    entry(7, "GET /z HTTP/1.1", ua="probe client_2001:db8::7 took ::17ms"),
    entry(8, "GET /v6v4/2001:db8::203.0.113.15 HTTP/1.1"),
    entry(9, "GET /esc HTTP/1.1", ua="curl \\x32\\x30\\x33.0.113.16"),  # \xNN-escaped digits
]
ADDRESSES = [
    "203.0.113.9", "203.0.113.5", "203.0.113.10", "203.0.113.11", "2001:db8::5",
    "2001:db8::6", "203.0.113.12", "2001:db8::7", "::17", "2001:db8::203.0.113.15",
    "203.0.113.15", "203.0.113.16",
]  # fmt: skip


def test_no_address_inside_request_text_is_stored(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(HIDDEN))
    db = tmp_path / "db" / "s.duckdb"
    with Store(db) as store:
        stats = ingest(store, [log])
        assert stats.imported == len(HIDDEN)
        text = store.query(
            "SELECT concat_ws(' ', host, path, query, referrer, referrer_host, utm_source) "
            "FROM requests UNION ALL SELECT ua FROM user_agents "
            "UNION ALL SELECT concat_ws(' ', entry, exit, referrer_host) FROM sessions"
        )
        paths = {r[0] for r in store.query("SELECT path FROM requests")}
    stored = " ".join(str(t[0]) for t in text)
    forms = set()
    for a in ADDRESSES:
        ip = ipaddress.ip_address(a)
        forms |= {a, str(ip), ip.exploded}
    assert not [f for f in forms if f in stored], stored
    for path in files_under(db.parent):  # the database, its WAL, the key file, the lock
        data = path.read_bytes()
        assert not [f for f in forms if f.encode() in data], path
    assert {"http://x.x.x.x:12542/x", "x.x.x.x:80", "http://[x:x:x:x]:8080/p"} <= paths
    assert "/v6v4/x:x:x:x" in paths


def test_a_version_4_store_has_its_stored_addresses_masked(tmp_path: Path) -> None:
    """Older imports stored text as it came: the upgrade masks it, and merges user agents
    that then read the same."""
    log = tmp_path / "access.log"
    bots = [entry(i, f"GET /p{i} HTTP/1.1", ua=f"Bot/1 (+http://x.example/{i})") for i in (1, 2)]
    log.write_text("".join(bots) + entry(3, "GET /p3 HTTP/1.1"))  # and a person, with a session
    db = tmp_path / "s.duckdb"
    with Store(db) as store:
        ingest(store, [log])
        # Back to what version 4 stored: addresses in the text.
        store.query("UPDATE requests SET path = '/from/203.0.113.9', referrer_host = '203.0.113.7'")
        store.query(
            "UPDATE user_agents SET ua = replace(ua, 'x.example/', '203.0.113.') WHERE ua LIKE 'Bot%'"
        )
        store.query("UPDATE sessions SET entry = '/from/203.0.113.9'")
        store.query("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    with Store(db) as store:
        with store.attached():  # the migration runs on the first write-capable attach
            pass
        assert store.query("SELECT DISTINCT path, referrer_host FROM requests") == [
            ("/from/x.x.x.x", "x.x.x.x")
        ]
        assert store.query("SELECT ua FROM user_agents WHERE ua LIKE 'Bot%'") == [
            ("Bot/1 (+http://x.x.x.x)",)
        ]
        assert store.query("SELECT count(DISTINCT ua_id) FROM requests") == [(2,)]
        assert store.query("SELECT DISTINCT entry FROM sessions") == [("/from/x.x.x.x",)]


# -- files beside the database: never through a symlink ----------------------------------


def test_a_symlinked_lock_file_is_refused(tmp_path: Path, runner: CliRunner) -> None:
    log = tmp_path / "access.log"
    log.write_text(HIDDEN[2])
    db = tmp_path / "s.duckdb"
    missing = tmp_path / "elsewhere" / "created-by-logalyse"
    Path(str(db) + ".lock").symlink_to(missing)
    r = runner.invoke(cli, ["--db", str(db), "import", str(log)])
    assert r.exit_code == ExitCode.ERROR
    assert r.stderr == f"Error: the lock file {db}.lock is a symbolic link: refusing to follow it\n"
    assert not missing.exists()


def test_a_symlinked_rejects_file_is_refused(tmp_path: Path, runner: CliRunner) -> None:
    log = tmp_path / "access.log"
    log.write_text("not a log line\n" + HIDDEN[2])
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "rejects.tsv"
    link.symlink_to(victim)
    r = runner.invoke(
        cli, ["--db", str(tmp_path / "s.duckdb"), "import", "--rejects", str(link), str(log)]
    )
    assert r.exit_code == ExitCode.ERROR, r.output
    assert "is a symbolic link: refusing to follow it" in r.stderr
    assert victim.read_text() == "precious\n"


# -- hostile text stays text, in every report and format ----------------------------------

#: C0 (ESC, BEL, NUL as nginx writes it), DEL, C1 (CSI U+009B, OSC U+009D), markup, script.
SEEDED = [
    entry(10, "GET /a?utm_source=a%C2%9B2J%C2%9D0;T%07&utm_campaign=%7F%1B[31m HTTP/1.1"),
    entry(11, "GET /\\xC2\\x9B2J/\\x1B]0;t\\x07 HTTP/1.1", ref="https://\\xC2\\x9Bevil.example/"),
    entry(
        12,
        "GET /[bold]x[/bold]<script>alert(1)</script> HTTP/1.1",
        ua="[red]ua[/red] \\x1B[2J\\x00",
    ),
    entry(13, "GET /missing\\xC2\\x9D HTTP/1.1", status=404),
    entry(14, "GET / HTTP/1.1", ua="Googlebot/2.1 \\xC2\\x9B6n"),
]
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("seeded")
    log = tmp / "access.log"
    log.write_text("".join(SEEDED) * 2)
    db = tmp / "s.duckdb"
    with Store(db) as store:
        assert ingest(store, [log]).imported == 2 * len(SEEDED)
    return db


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "tsv"])
def test_every_report_shows_hostile_text_literally(seeded: Path, fmt: str) -> None:
    runner = CliRunner()
    for name in REPORT_HELP:
        r = runner.invoke(
            cli, ["--db", str(seeded), "report", name, "--include-bots", "--format", fmt]
        )
        assert r.exit_code == 0, (name, r.output)
        out = r.stdout_bytes.decode("utf-8")
        assert not RAW_CONTROL.search(out), (name, RAW_CONTROL.findall(out))
        assert not RAW_CONTROL.search(r.stderr), name
        if fmt == "json":
            json.loads(out)  # still JSON, with \u009b where the text had one
    # A percent-encoded CSI in a campaign is stored as the character it is, and shown escaped.
    camp = runner.invoke(cli, ["--db", str(seeded), "report", "campaigns", "--json"])
    assert any("\u009b" in row["utm_source"] for row in json.loads(camp.stdout))
    assert "\\u009b" in camp.stdout
    # nginx's \xNN escapes of controls stay escaped: the path holds the text \x9B.
    pages = runner.invoke(cli, ["--db", str(seeded), "report", "pages", "--include-bots", "--json"])
    assert any("\\x9B" in row["path"] for row in json.loads(pages.stdout))


def test_a_hostile_host_filter_is_echoed_safely(seeded: Path, runner: CliRunner) -> None:
    r = runner.invoke(cli, ["--db", str(seeded), "report", "pages", "--host", "\x1b[31mevil\x9b"])
    assert r.exit_code == 0
    assert not RAW_CONTROL.search(r.stdout + r.stderr)
    assert "\\x1B[31mevil\\x9B" in r.stdout


# -- the right error, one line, the documented code ---------------------------------------


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["report", "overview", "--since", "99999999d"], 2, "out of range"),
        (["report", "sessions", "--gap", "99999999999d"], 2, "out of range"),
        (["report", "sessions", "--gap", "0"], 2, "out of range: from 1m"),
        (["report", "overview", "--limit", "99999999999999999999"], 2, "not in the range"),
        (["import", "--grace", "999999999999d", "LOG"], 2, "out of range"),
        (["prune", "--older-than", "99999y"], 2, "more than a hundred years"),
        (["tail", "--every", "0", "-"], 2, "out of range: from 1s"),
        (["import", "--rejects", "nodir/x", "LOG"], 1, "cannot open the rejects file nodir/x"),
        (["report", "overview", "--tz", "UTC', now()) --"], 2, "unknown time zone"),
        (["report", "overview", "--format", "x\x1b[2J"], 2, "x\\x1b[2J"),
    ],
)
def test_a_bad_value_is_one_clear_line(
    tmp_path: Path, runner: CliRunner, args: list[str], code: int, message: str
) -> None:
    log = tmp_path / "access.log"
    log.write_text(HIDDEN[2])
    db = tmp_path / "s.duckdb"
    assert runner.invoke(cli, ["--db", str(db), "import", "-q", str(log)]).exit_code == 0
    r = runner.invoke(
        cli, ["--db", str(db), *[str(log) if a == "LOG" else a for a in args]], input=""
    )
    assert r.exit_code == code, r.output
    error = [ln for ln in r.stderr.splitlines() if ln.startswith("Error")]
    assert len(error) == 1 and message in error[0], r.stderr
    assert "Traceback" not in r.stderr and not RAW_CONTROL.search(r.stderr)


def test_sql_in_a_flag_is_text(tmp_path: Path, runner: CliRunner) -> None:
    log = tmp_path / "access.log"
    log.write_text(entry(1, "GET /a.x'y HTTP/1.1") + entry(2, "GET /b HTTP/1.1"))
    db = tmp_path / "s.duckdb"
    r = runner.invoke(cli, ["--db", str(db), "import", "--asset-ext", "x'y", str(log)])
    assert r.exit_code == 0, r.output
    with Store(db, read_only=True) as store:
        assert store.query("SELECT path, is_pageview FROM requests ORDER BY path") == [
            ("/a.x'y", False), ("/b", True)
        ]  # fmt: skip
    with pytest.raises(ConfigError):
        Scope(tz="UTC', now()) --", sessions_stale=False)


def _mount(tmp_path: Path, options: str) -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (CI runs as root)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode:
        pytest.skip(f"mount not allowed here: {r.stderr.decode().strip()}")
    return mnt


def test_a_read_only_database_directory_is_one_line(tmp_path: Path) -> None:
    mnt = _mount(tmp_path, "ro,size=1m")
    try:
        log = tmp_path / "access.log"
        log.write_text(HIDDEN[2])
        r = subprocess.run(
            [sys.executable, "-m", "logalyse", "--db", str(mnt / "s.duckdb"), "import", str(log)],
            capture_output=True,
        )
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    err = r.stderr.decode()
    assert r.returncode == ExitCode.ERROR, err
    assert err.count("\n") == 1 and "Read-only file system" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_what_was_stored(tmp_path: Path) -> None:
    mnt = _mount(tmp_path, "size=8m")
    try:
        db = mnt / "s.duckdb"
        small = tmp_path / "small.log"
        small.write_text("".join(entry(i % 250, f"GET /s{i} HTTP/1.1") for i in range(200)))
        first = subprocess.run(
            [sys.executable, "-m", "logalyse", "--db", str(db), "import", "-q", str(small)],
            capture_output=True,
        )
        assert first.returncode == 0, first.stderr.decode()
        big = tmp_path / "big.log"
        with open(big, "w") as f:
            for i in range(100_000):
                f.write(entry(i % 250, f"GET /big/{i}/{'q' * (i % 40)} HTTP/1.1", ua=f"UA {i}"))
        full = subprocess.run(
            [sys.executable, "-m", "logalyse", "--db", str(db), "import", str(big)],
            capture_output=True,
        )
        err = full.stderr.decode()
        assert full.returncode == ExitCode.ERROR, err
        assert "Traceback" not in err and err.count("\nError") + err.startswith("Error") == 1, err
        with Store(db, read_only=True) as store:  # what the first import stored is intact
            assert store.query("SELECT count(*) FROM requests WHERE path LIKE '/s%'") == [(200,)]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


#: `logalyse import` that sends itself SIGTERM once its first block is parsed.
TERM_AFTER_FIRST_BLOCK = """
import os, signal, sys
import logalyse.cli.ingest as c
import logalyse.ingest.pipeline as m

finish = m.Pipeline._finish_batch
def finish_then_term(self, *args):
    out = finish(self, *args)
    os.kill(os.getpid(), signal.SIGTERM)
    return out
m.Pipeline._finish_batch = finish_then_term
options = c._import_options
c._import_options = lambda p: __import__("dataclasses").replace(options(p), batch_bytes=1 << 16)
sys.argv = ["logalyse"] + sys.argv[1:]
c.cli()
"""


def test_sigterm_during_an_import_stores_what_was_read(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with open(log, "w") as f:
        for i in range(3000):
            f.write(entry(i % 250, f"GET /p{i} HTTP/1.1"))
    db = tmp_path / "s.duckdb"
    r = subprocess.run(
        [sys.executable, "-c", TERM_AFTER_FIRST_BLOCK, "--db", str(db), "import", str(log)],
        capture_output=True,
    )
    err = r.stderr.decode()
    assert r.returncode == ExitCode.INTERRUPTED, err
    assert "Interrupted: what was read is stored; the same command again imports the rest" in err
    with Store(db, read_only=True) as store:
        (first,) = store.query("SELECT count(*) FROM requests")[0]
    assert 0 < first < 3000
    again = subprocess.run(
        [sys.executable, "-m", "logalyse", "--db", str(db), "import", str(log)], capture_output=True
    )
    assert again.returncode == 0 and f"{3000 - first:,} lines" in again.stderr.decode()
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(*), count(DISTINCT line_no) FROM requests") == [
            (3000, 3000)
        ]
    assert signal.SIGTERM  # (the signal is real: the process sent it to itself)


@pytest.mark.parametrize(
    "command, said",
    [
        (["prune", "--older-than", "1y", "--lock-timeout", "0.2"], "nothing was deleted"),
        (["enrich", "--lock-timeout", "0.2"], "nothing was classified"),
        (["db", "forget", "stdin", "--lock-timeout", "0.2"], "nothing was forgotten"),
    ],
)
def test_upkeep_blocked_by_a_tail_says_what_was_not_done(
    tmp_path: Path, runner: CliRunner, command: list[str], said: str
) -> None:
    db = tmp_path / "s.duckdb"
    assert (
        runner.invoke(cli, ["--db", str(db), "import", "-q", "-"], input=HIDDEN[2]).exit_code == 0
    )
    with Store(db) as store, store.writer_lock():  # a tail holds the database
        r = runner.invoke(cli, ["--db", str(db), *command])
    assert r.exit_code == ExitCode.LOCKED, r.output
    assert said in r.stderr and "imported" not in r.stderr

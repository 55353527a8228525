"""`logalyse import` as users run it: messages on stderr, nothing on stdout, exit codes."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from logalyse.cli import cli
from logalyse.errors import ExitCode
from logalyse.store import Store

from .conftest import FIXTURES, LOGS, SAMPLE_LOGS

HACKERS = str(LOGS / "hackers-access.log")


def test_import_prints_one_summary_line_on_stderr(runner: CliRunner, db_path: Path) -> None:
    result = runner.invoke(cli, ["--db", str(db_path), "import", HACKERS])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("imported 3,456 lines from 1 input in ")
    summary, hint = result.stderr.splitlines()
    assert summary.endswith("(3,456 read, 0 already imported, 0 malformed, 0 non-access)")
    assert hint.startswith("stored without countries (no GeoIP database): `logalyse geoip update`")
    again = runner.invoke(cli, ["import", "--db", str(db_path), HACKERS])
    assert "imported 0 lines" in again.stderr and "3,456 already imported" in again.stderr


def test_db_from_environment_and_xdg_default(runner: CliRunner, tmp_path: Path) -> None:
    env_db = tmp_path / "env.duckdb"
    result = runner.invoke(cli, ["import", "-q", HACKERS], env={"LOGALYSE_DB": str(env_db)})
    assert result.exit_code == 0, result.output
    assert env_db.exists()
    result = runner.invoke(cli, ["import", "-q", HACKERS])
    assert result.exit_code == 0, result.output
    default = Path(os.environ["XDG_DATA_HOME"]) / "logalyse" / "logalyse.duckdb"
    assert default.exists()
    assert stat.S_IMODE(Path(str(default) + ".keys").stat().st_mode) == 0o600


def test_quiet_prints_nothing(runner: CliRunner, db_path: Path) -> None:
    result = runner.invoke(cli, ["import", "--db", str(db_path), "-q", HACKERS])
    assert (result.exit_code, result.output) == (0, "")


def test_stdin(runner: CliRunner, db_path: Path) -> None:
    text = (SAMPLE_LOGS / "docker-compose.log").read_bytes()
    result = runner.invoke(cli, ["import", "--db", str(db_path), "-"], input=text)
    assert result.exit_code == 0, result.output
    assert "imported 1,500 lines" in result.stderr and "33 non-access" in result.stderr


def test_missing_file_is_a_clear_error(runner: CliRunner, db_path: Path) -> None:
    result = runner.invoke(cli, ["import", "--db", str(db_path), "/nonexistent/access.log"])
    assert result.exit_code == ExitCode.ERROR
    assert result.stderr == "Error: /nonexistent/access.log: no such file\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file(runner: CliRunner, db_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "secret.log"
    log.write_text("x\n")
    log.chmod(0)
    result = runner.invoke(cli, ["import", "--db", str(db_path), str(log)])
    assert result.exit_code == ExitCode.ERROR and "permission denied" in result.stderr


def test_directory_is_a_clear_error(runner: CliRunner, db_path: Path) -> None:
    result = runner.invoke(cli, ["import", "--db", str(db_path), str(LOGS)])
    assert result.exit_code == ExitCode.ERROR
    assert "is a directory" in result.stderr


def test_bad_format_is_a_usage_error(runner: CliRunner, db_path: Path) -> None:
    result = runner.invoke(
        cli, ["import", "--db", str(db_path), "--format", "$remote_addr", HACKERS]
    )
    assert result.exit_code == ExitCode.USAGE
    assert "lacks a time" in result.stderr
    assert not db_path.exists()


def test_wrong_format_exits_with_its_own_code(
    runner: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "traefik.log"
    shutil.copy(FIXTURES / "crowdsec-hub" / "traefik_json--traefik_json.log", log)
    os.utime(log, (0, 0))  # long finished: its unterminated last line counts too
    result = runner.invoke(cli, ["import", "--db", str(db_path), "--format", "common", str(log)])
    assert result.exit_code == ExitCode.MOSTLY_MALFORMED
    assert "7 malformed lines" in result.stderr
    assert (
        "did not parse as format 'common' (7 of 7; nothing of it stored): pass --log-format"
        in result.stderr
    )


CUSTOM = '$remote_addr [$time_local] "$request" $status $body_bytes_sent "$http_user_agent"'


def test_a_failed_first_import_leaves_the_file_to_the_right_format(
    runner: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "custom.log"
    with open(log, "w") as f:
        for i in range(300):
            ua = '"curl/8"' if i % 10 else '"-"'
            f.write(
                f'203.0.113.{i % 250} [01/Nov/2026:10:{i // 60:02}:{i % 60:02} +0000] "GET /p{i} HTTP/1.1" 200 5 {ua}\n'
            )
    wrong = runner.invoke(cli, ["import", "--db", str(db_path), "--format", "common", str(log)])
    assert wrong.exit_code == ExitCode.MOSTLY_MALFORMED, wrong.output
    assert "nothing of it stored" in wrong.stderr
    again = runner.invoke(cli, ["import", "--db", str(db_path), "--format", CUSTOM, str(log)])
    assert again.exit_code == 0, again.output
    assert "imported 300 lines from 1 input" in again.stderr
    assert "(300 read, 0 already imported, 0 malformed" in again.stderr


def test_malformed_lines_shown_masked_and_kept_aside(
    runner: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        '203.0.113.9 - - [01/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "x"\n'
        "203.0.113.9 - [broken line with \x1b[31mescape\n"
    )
    rejects = tmp_path / "rejects.tsv"
    result = runner.invoke(
        cli, ["import", "--db", str(db_path), "--rejects", str(rejects), str(log)]
    )
    assert result.exit_code == 0, result.output
    assert "1 malformed line\n" in result.stderr
    assert (
        "  line 2 (does not match the format): x.x.x.x - [broken line with \\x1B[31mescape\n"
        in result.stderr
    )
    assert "\x1b" not in result.stderr and "203.0.113.9" not in result.stderr
    assert rejects.read_text() == (
        f"{log}\t2\tdoes not match the format\tx.x.x.x - [broken line with \\x1B[31mescape\n"
    )
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600


def test_help_lists_exit_codes(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["import", "--help"])
    assert result.exit_code == 0
    assert "3   most lines of an input did not parse" in result.output
    assert "--log-format" in result.output and "LOGALYSE_DB" in result.output


def _line(query: str = "", ua: str = "Mozilla/5.0", path: str = "/", second: int = 0) -> str:
    q = f"?{query}" if query else ""
    return (
        f'203.0.113.9 - - [01/Nov/2026:10:00:{second:02} +0000] "GET {path}{q} HTTP/1.1" '
        f'200 5 "-" "{ua}"\n'
    )


def test_a_value_that_does_not_decode_is_kept_as_logged(
    runner: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        _line("utm_source=%FF", second=1)
        + _line("utm_source=caf%E9&utm_campaign=%9B", second=2)
        + _line("ref=%C3%A9t%C3%A9", second=3)
        + _line(second=4)
    )
    result = runner.invoke(cli, ["--db", str(db_path), "import", str(log)])
    assert result.exit_code == 0, result.output
    assert "imported 4 lines" in result.stderr
    with Store(db_path, read_only=True) as store:
        assert store.query("SELECT utm_source, utm_campaign FROM requests ORDER BY line_no") == [
            ("%FF", None), ("caf%E9", "%9B"), ("été", None), (None, None)
        ]  # fmt: skip


def test_msec_junk_is_a_malformed_line_not_a_failed_batch(
    runner: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    ok = "1793527200.123"
    values = [ok, "1e300", ok, "nan", "inf", "99999999999999", "-5", ok, ok, ok, ok]
    log.write_text(
        "".join(f'{v} 203.0.113.9 "GET /p{i} HTTP/1.1" 200\n' for i, v in enumerate(values))
    )
    result = runner.invoke(
        cli,
        [
            "--db",
            str(db_path),
            "import",
            "--format",
            '$msec $remote_addr "$request" $status',
            str(log),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "imported 6 lines" in result.stderr and "5 malformed" in result.stderr
    assert "line 2 (no readable time)" in result.stderr
    assert "line 7 (time before 1970 or after 2199)" in result.stderr


def test_apache_escaped_quotes_inside_fields(
    runner: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    """Apache writes \\" and \\\\ inside quoted fields (pearcmd probes, JSON in queries)."""
    log = tmp_path / "access.log"
    log.write_text(
        _line(path='/index.php?+config-create+/&/<?echo(md5(\\"hi\\"));?>+/tmp/x.php', second=1)
        + _line(ua='Mozilla/5.0 \\"quoted\\" back\\\\slash', second=2)
        + _line(path="/ends-with-backslash\\\\", second=3)
    )
    result = runner.invoke(cli, ["--db", str(db_path), "import", str(log)])
    assert result.exit_code == 0, result.output
    assert "imported 3 lines" in result.stderr and "0 malformed" in result.stderr
    with Store(db_path, read_only=True) as store:
        assert store.query("SELECT path FROM requests ORDER BY line_no") == [
            ("/index.php",), ("/",), ("/ends-with-backslash\\",)
        ]  # fmt: skip
        assert store.query("SELECT ua FROM user_agents WHERE ua LIKE '%quoted%'") == [
            ('Mozilla/5.0 "quoted" back\\slash',)
        ]


def test_summary_names_the_last_line_left_for_the_next_run(
    runner: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    log.write_text(_line(second=1) + _line(second=2)[:50])
    result = runner.invoke(cli, ["--db", str(db_path), "import", str(log)])
    assert result.exit_code == 0, result.output
    assert f"{log}: 1 unterminated last line left for the next run\n" in result.stderr
    assert "imported 1 line from 1 input" in result.stderr
    piped = runner.invoke(
        cli, ["--db", str(db_path), "import", "-"], input=_line(second=5) + "203.0"
    )
    assert "stdin: 1 unterminated last line not stored (the stream ended mid-line)" in piped.stderr

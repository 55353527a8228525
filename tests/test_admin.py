"""Config file and `config show`, `prune`, `db info`: what a cron job and its admin use."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from logalyse.admin import Age, info, parse_age, prune
from logalyse.cli import cli
from logalyse.config import KEYS
from logalyse.ingest import ingest
from logalyse.store import SCHEMA_VERSION, Store, sessionise_sql

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


def line(ip: str, day: str, path: str, ref: str = "-") -> str:
    stamp = datetime.fromisoformat(day).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" 200 100 "{ref}" "{FIREFOX}"\n'


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Three requests in October 2025, two in November 2026 (one referred by blog.example)."""
    p = tmp_path / "access.log"
    p.write_text(
        line("203.0.113.1", "2025-10-01T10:00:00", "/old1")
        + line("203.0.113.2", "2025-10-02T10:00:00", "/old2")
        + line("203.0.113.3", "2025-10-30T10:00:00", "/old3")
        + line("203.0.113.4", "2026-11-01T10:00:00", "/new1", "https://blog.example/post")
        + line("203.0.113.5", "2026-11-02T10:00:00", "/new2")
    )
    return p


def test_config_file_env_and_flag_precedence(tmp_path: Path, log: Path, runner: CliRunner) -> None:
    db = tmp_path / "from-config.duckdb"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'db = "{db}"\nsites = ["blog.example"]\ntz = "Asia/Tokyo"\n')
    r = runner.invoke(cli, ["--config", str(cfg), "import", "-q", str(log)])
    assert r.exit_code == 0, r.output
    with Store(db, read_only=True) as store:
        # sites from the file: the blog's referral is internal, not a source.
        assert store.query("SELECT source_kind FROM requests WHERE path = '/new1'") == [
            ("internal",)
        ]
    show = runner.invoke(
        cli, ["--config", str(cfg), "config", "show", "--json"], env={"LOGALYSE_TZ": "UTC"}
    )
    rows = {r["key"]: r for r in json.loads(show.output)}
    assert rows["db"]["value"] == str(db) and rows["db"]["origin"] == f"file {cfg}"
    assert rows["tz"]["value"] == "UTC" and rows["tz"]["origin"] == "env LOGALYSE_TZ"
    assert rows["grace"]["origin"] == "default"
    flag = runner.invoke(
        cli, ["--config", str(cfg), "--db", "x.duckdb", "config", "show", "--json"]
    )
    rows = {r["key"]: r for r in json.loads(flag.output)}
    assert rows["db"] == {**rows["db"], "value": "x.duckdb", "origin": "flag --db"}
    # A flag beats the file: the group's --db over the file's db.
    other = tmp_path / "other.duckdb"
    r = runner.invoke(cli, ["--config", str(cfg), "--db", str(other), "import", "-q", str(log)])
    assert r.exit_code == 0 and other.exists()


def test_config_default_location_and_errors(tmp_path: Path, runner: CliRunner) -> None:
    home = tmp_path / "xdg"
    (home / "logalyse").mkdir(parents=True)
    (home / "logalyse" / "config.toml").write_text('gap = "20m"\n')
    r = runner.invoke(cli, ["config", "show", "--json"], env={"XDG_CONFIG_HOME": str(home)})
    assert {x["key"]: x["value"] for x in json.loads(r.output)}["gap"] == "20m"
    (home / "logalyse" / "config.toml").write_text("colour = true\n")
    r = runner.invoke(cli, ["config", "show"], env={"XDG_CONFIG_HOME": str(home)})
    assert r.exit_code == 2 and "unknown key 'colour'" in r.output
    (home / "logalyse" / "config.toml").write_text("tz = [\n")
    r = runner.invoke(cli, ["config", "show"], env={"XDG_CONFIG_HOME": str(home)})
    assert r.exit_code == 2 and "not valid TOML" in r.output
    r = runner.invoke(cli, ["--config", str(tmp_path / "nope.toml"), "config", "show"])
    assert r.exit_code == 2 and "does not exist" in r.output


def _commands() -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    for name, cmd in cli.commands.items():
        if isinstance(cmd, click.Group):
            out.update({f"{name} {n}": c for n, c in cmd.commands.items()})
        else:
            out[name] = cmd
    return out


def test_every_config_key_is_a_flag_and_a_variable_of_its_commands() -> None:
    commands = _commands()
    for key in KEYS:
        targets = [
            c
            for name, c in commands.items()
            if "*" in key.commands or name.split()[0] in key.commands
        ]
        with_param = [c for c in targets if any(p.name == key.param for p in c.params)]
        assert with_param, key.name
        for c in with_param:
            (param,) = [p for p in c.params if p.name == key.param]
            assert isinstance(param, click.Option) and param.envvar == key.envvar, (key, c.name)


def test_prune_deletes_old_rows_and_never_reimports_them(tmp_path: Path, log: Path) -> None:
    db = tmp_path / "db.duckdb"
    now = datetime(2026, 11, 28, 12, 0)
    with Store(db) as store:
        ingest(store, [log])
        dry = prune(store, parse_age("13mo"), dry_run=True, now=now)
        assert (dry.cutoff, dry.requests, dry.sessions) == (datetime(2025, 10, 28), 2, 2)
        assert store.query("SELECT count(*) FROM requests") == [(5,)]
        done = prune(store, parse_age("13mo"), now=now)
        assert (done.requests, done.sessions) == (2, 2)
        assert store.query("SELECT path FROM requests ORDER BY ts") == [
            ("/old3",),
            ("/new1",),
            ("/new2",),
        ]
        assert store.query("SELECT count(*) FROM sessions") == [(3,)]
        # The checkpoint stayed: importing the same file again brings nothing back.
        assert ingest(store, [log]).imported == 0
        assert store.query("SELECT count(*) FROM requests") == [(3,)]


def test_prune_and_db_info_commands(tmp_path: Path, log: Path, runner: CliRunner) -> None:
    db = tmp_path / "db.duckdb"
    assert runner.invoke(cli, ["--db", str(db), "import", "-q", str(log)]).exit_code == 0
    r = runner.invoke(cli, ["--db", str(db), "db", "info", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    db_info = doc["database"]
    assert (db_info["requests"], db_info["sessions"], db_info["days"]) == (5, 5, 5)
    assert db_info["schema_version"] == SCHEMA_VERSION and db_info["size_bytes"] > 0
    assert db_info["first_request"] == "2025-10-01 10:00:00"
    assert db_info["open_day_keys"] == "2026-11-02"  # the others are closed
    assert db_info["closed_days"] == 4
    assert [(i["name"], i["lines"]) for i in doc["inputs"]] == [(str(log), 5)]
    r = runner.invoke(cli, ["--db", str(db), "prune", "--older-than", "400d"])
    assert r.exit_code == 0 and "deleted" in r.output
    r = runner.invoke(cli, ["--db", str(db), "prune", "--older-than", "13 parsecs"])
    assert r.exit_code == 2 and "not an age" in r.output
    r = runner.invoke(cli, ["--db", str(tmp_path / "none.duckdb"), "db", "info"])
    assert r.exit_code == 1 and "no logalyse database" in r.output


def test_age_arithmetic() -> None:
    assert Age(months=1).before(datetime(2026, 3, 31)) == datetime(2026, 2, 28)
    assert Age(months=12).before(datetime(2024, 2, 29)) == datetime(2023, 2, 28)
    assert parse_age("2y") == Age(months=24) and parse_age("1d") == Age(days=1)


def test_info_on_an_empty_store(tmp_path: Path) -> None:
    with Store(tmp_path / "db.duckdb") as store:
        database, inputs = info(store)
    assert database.record["requests"] == 0 and inputs.rows == []


def test_db_inputs_then_forget_one_and_import_it_again(
    tmp_path: Path, log: Path, runner: CliRunner
) -> None:
    db = tmp_path / "db.duckdb"
    stream = line("203.0.113.8", "2026-11-03T10:00:00", "/s")
    assert runner.invoke(cli, ["--db", str(db), "import", "-q", str(log)]).exit_code == 0
    r = runner.invoke(cli, ["--db", str(db), "import", "-q", "-"], input=stream)
    assert r.exit_code == 0, r.output
    listed = runner.invoke(cli, ["--db", str(db), "db", "inputs", "--json"])
    assert listed.exit_code == 0, listed.output
    by_kind = {i["kind"]: i for i in json.loads(listed.stdout)}
    assert (by_kind["file"]["name"], by_kind["file"]["lines"]) == (str(log), 5)
    assert by_kind["file"]["requests"] == 5 and by_kind["file"]["complete"] == "no"
    assert (by_kind["stream"]["name"], by_kind["stream"]["requests"]) == ("stdin", 1)

    # A rotated name is recognised by its content; a dry run changes nothing.
    rotated = log.rename(tmp_path / "access.log.1")
    dry = runner.invoke(cli, ["--db", str(db), "db", "forget", str(rotated), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    fid = by_kind["file"]["id"]
    assert dry.stderr == f"would forget input {fid} (file {log}) and its 5 stored requests\n"
    gone = runner.invoke(cli, ["--db", str(db), "db", "forget", str(rotated)])
    assert gone.exit_code == 0, gone.output
    assert "forgot input" in gone.stderr and "reads it from its first line" in gone.stderr
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(*) FROM requests") == [(1,)]
        assert store.query("SELECT count(*) FROM sessions") == [(1,)]
    again = runner.invoke(cli, ["--db", str(db), "import", str(rotated)])
    assert "imported 5 lines" in again.stderr and "0 already imported" in again.stderr
    with Store(db, read_only=True) as store:
        fresh = sessionise_sql()
        assert store.query("SELECT count(*) FROM requests") == [(6,)]
        assert store.query(f"SELECT count(*) FROM ({fresh} EXCEPT ALL FROM sessions)") == [(0,)]
        assert store.query(f"SELECT count(*) FROM (FROM sessions EXCEPT ALL {fresh})") == [(0,)]

    stream_gone = runner.invoke(cli, ["--db", str(db), "db", "forget", "stdin"])
    assert stream_gone.exit_code == 0, stream_gone.output
    nothing = runner.invoke(cli, ["--db", str(db), "db", "forget", "nosuch.log"])
    assert nothing.exit_code == 2
    assert nothing.stderr == f"Error: no input 'nosuch.log' in {db}: see `logalyse db inputs`\n"


def test_months_are_mo_minutes_are_m(runner: CliRunner, tmp_path: Path) -> None:
    r = runner.invoke(cli, ["--db", str(tmp_path / "d.duckdb"), "prune", "--older-than", "13m"])
    assert r.exit_code == 2
    assert "'13m': write 13mo for months (m is minutes elsewhere)" in r.stderr
    assert parse_age("13 months") == parse_age("13mo") == Age(months=13)

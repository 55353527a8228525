"""Which store a command uses: a flag (before or after the command name) beats the
environment variable, which beats the config file, for every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from logalyse.cli import cli

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


def lines(n: int) -> str:
    return "".join(
        f'203.0.113.{i + 1} - - [01/Nov/2026:10:00:{i:02} +0000] "GET /p{i} HTTP/1.1" 200 5 "-" "{FIREFOX}"\n'
        for i in range(n)
    )


@pytest.fixture
def stores(tmp_path: Path, runner: CliRunner) -> dict[str, Path]:
    """Three stores holding 1, 2 and 3 requests: which one a report reads is plain."""
    out = {}
    for n, name in enumerate(["flag", "env", "file"], start=1):
        log = tmp_path / f"{name}.log"
        log.write_text(lines(n))
        db = tmp_path / f"{name}.duckdb"
        r = runner.invoke(cli, ["--db", str(db), "import", "-q", str(log)])
        assert r.exit_code == 0, r.output
        out[name] = db
    return out


def _config(tmp_path: Path, db: Path, keys_dir: Path | None = None) -> Path:
    cfg = tmp_path / "config.toml"
    text = f'db = "{db}"\n' + (f'keys_dir = "{keys_dir}"\n' if keys_dir else "")
    cfg.write_text(text)
    return cfg


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("given", ["flag+env+file", "env+file", "file", "flag+file", "flag+env"])
def test_a_report_reads_the_store_named_by_the_strongest_setting(
    stores: dict[str, Path], tmp_path: Path, runner: CliRunner, where: str, given: str
) -> None:
    args = ["report", "overview", "--json"]
    env = {"LOGALYSE_DB": str(stores["env"])} if "env" in given else {}
    top = ["--config", str(_config(tmp_path, stores["file"]))] if "file" in given else []
    if "flag" in given:
        flag = ["--db", str(stores["flag"])]
        args = flag + args if where == "before" else args + flag
    r = runner.invoke(cli, top + args, env=env)
    assert r.exit_code == 0, r.output
    expected = 1 if "flag" in given else 2 if "env" in given else 3
    assert json.loads(r.stdout)["requests"] == expected


@pytest.mark.parametrize(
    "command", [["import", "-q", "LOG"], ["tail", "-q", "-"], ["db", "forget", "-q", "stdin"]]
)
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_writer_writes_the_store_its_flag_names(
    tmp_path: Path, runner: CliRunner, command: list[str], where: str
) -> None:
    log = tmp_path / "access.log"
    log.write_text(lines(2))
    flag_db, env_db = tmp_path / "flag.duckdb", tmp_path / "env.duckdb"
    if command[0] == "db":  # something to forget, in both stores
        for db in (flag_db, env_db):
            runner.invoke(cli, ["--db", str(db), "import", "-q", "-"], input=lines(2))
    args = [str(log) if a == "LOG" else a for a in command]
    flag = ["--db", str(flag_db)]
    args = flag + args if where == "before" else args + flag
    r = runner.invoke(cli, args, env={"LOGALYSE_DB": str(env_db)}, input=lines(2))
    assert r.exit_code == 0, r.output
    report = runner.invoke(cli, ["--db", str(flag_db), "report", "overview", "--json"])
    assert json.loads(report.stdout)["requests"] == (0 if command[0] == "db" else 2)
    if command[0] == "db":
        again = runner.invoke(cli, ["--db", str(env_db), "report", "overview", "--json"])
        assert json.loads(again.stdout)["requests"] == 2  # the other store: untouched
    else:
        assert not env_db.exists()


def test_config_show_names_where_the_db_came_from(
    stores: dict[str, Path], tmp_path: Path, runner: CliRunner
) -> None:
    cfg = ["--config", str(_config(tmp_path, stores["file"]))]
    env = {"LOGALYSE_DB": str(stores["env"])}

    def origin(*args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
        r = runner.invoke(cli, [*cfg, *args, "config", "show", "--json"], env=env or {})
        assert r.exit_code == 0, r.output
        row = next(x for x in json.loads(r.stdout) if x["key"] == "db")
        return row["value"], row["origin"]

    assert origin(env=env) == (str(stores["env"]), "env LOGALYSE_DB")
    assert origin("--db", str(stores["flag"]), env=env) == (str(stores["flag"]), "flag --db")
    assert origin() == (str(stores["file"]), f"file {tmp_path / 'config.toml'}")


@pytest.mark.parametrize("how", ["flag", "env", "file"])
def test_keys_dir_puts_the_day_keys_elsewhere(tmp_path: Path, runner: CliRunner, how: str) -> None:
    log = tmp_path / "access.log"
    log.write_text(lines(2))
    db, keys = tmp_path / "db" / "site.duckdb", tmp_path / "run-logalyse"
    args = ["--db", str(db)]
    env: dict[str, str] = {}
    if how == "flag":
        args += ["--keys-dir", str(keys)]
    elif how == "env":
        env["LOGALYSE_KEYS_DIR"] = str(keys)
    else:
        args = ["--config", str(_config(tmp_path, db, keys))]
    r = runner.invoke(cli, [*args, "import", "-q", str(log)], env=env)
    assert r.exit_code == 0, r.output
    (made,) = keys.iterdir()
    assert made.name.startswith("site.duckdb-") and made.suffix == ".keys"
    assert (made.stat().st_mode & 0o777, keys.stat().st_mode & 0o777) == (0o600, 0o700)
    assert not Path(str(db) + ".keys").exists()
    info = runner.invoke(cli, [*args, "db", "info", "--json"], env=env)
    assert json.loads(info.stdout)["database"]["open_day_keys"] == "2026-11-01"

"""Reports a person trusts at first glance (issue 20): periods named, impossible periods
refused, the site's host matched, one rule for hits, every row on request, snake_case
keys, one table per CSV, a store's age said, long lists cut rather than wrapped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from logalyse.cli import cli
from logalyse.cli.reports import REPORT_HELP, REPORT_TABLES
from logalyse.store import Store

from .conftest import clean_env

#: The golden files' period.
SCOPE = ["--since", "2026-11-01", "--until", "2026-11-04"]


def run(db: Path, *args: str, code: int = 0, **env: str) -> Any:
    result = CliRunner(env=clean_env(**env)).invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == code, result.output
    return result


def test_the_overview_names_both_periods(demo_db: Path) -> None:
    out = run(
        demo_db, "report", "overview", "--since", "2026-11-03", "--until", "2026-11-04"
    ).stdout
    header = next(line for line in out.splitlines() if "change" in line)
    assert header.split() == [
        "2026-11-03",
        "to",
        "2026-11-04",
        "2026-11-01",
        "to",
        "2026-11-02",
        "change",
    ]
    one_day = run(demo_db, "report", "overview", "--since", "2026-11-03", "--until", "2026-11-03")
    assert "2026-11-03   2026-11-02   change" in re.sub(" {3,}", "   ", one_day.stdout)
    page = run(demo_db, "report", "overview", "--since", "2026-11-03", "--format", "html").stdout
    assert ">2026-11-03 to now<" in page and ">change<" in page


def test_a_period_that_ends_before_it_starts_is_refused(demo_db: Path) -> None:
    r = run(demo_db, "report", "pages", "--since", "2026-11-03", "--until", "2026-11-01", code=2)
    assert "is after" in r.stderr and r.stdout == ""


def test_the_sites_host_matches_requests_logged_without_one(demo_db: Path) -> None:
    with Store(demo_db, read_only=True) as store:
        assert store.meta("site_hosts") == "example.com"  # learnt from the sample logs
        assert store.query("SELECT count(*) FROM requests WHERE host IS NOT NULL")[0][0] == 0
    everything = json.loads(run(demo_db, "report", "overview", *SCOPE, "--json").stdout)
    for host in ("example.com", "www.Example.com"):
        got = json.loads(
            run(demo_db, "report", "overview", *SCOPE, "--host", host, "--json").stdout
        )
        assert got["requests"] == everything["requests"] > 0, host
    other = json.loads(
        run(demo_db, "report", "overview", *SCOPE, "--host", "other.org", "--json").stdout
    )
    assert other["requests"] == 0


def test_reports_of_hits_count_bots_and_say_so(demo_db: Path) -> None:
    status = json.loads(run(demo_db, "report", "status", *SCOPE, "--json").stdout)
    not_found = json.loads(
        run(demo_db, "report", "not-found", *SCOPE, "--json", "--limit", "0").stdout
    )
    overview = json.loads(run(demo_db, "report", "overview", *SCOPE, "--json").stdout)
    assert sum(s["requests"] for s in status) == overview["requests"]
    (s404,) = [s for s in status if s["status"] == 404]
    assert s404["requests"] == sum(p["requests"] for p in not_found)
    assert s404["bots"] == sum(p["bots"] for p in not_found) > 0
    for name in ("status", "not-found"):
        assert (
            "hits: every request, assets and bots included"
            in run(demo_db, "report", name, *SCOPE).stdout
        )


def test_limit_0_is_every_row(demo_db: Path) -> None:
    every = json.loads(run(demo_db, "report", "pages", *SCOPE, "--limit", "0", "--json").stdout)
    with Store(demo_db, read_only=True) as store:
        (distinct,) = store.query("SELECT count(DISTINCT path) FROM requests WHERE is_pageview")[0]
    assert len(every) == distinct > 20
    run(demo_db, "report", "pages", "--limit", "-1", code=2)


def test_a_gap_under_a_minute_is_refused(demo_db: Path) -> None:
    for gap in ("0", "0m", "30s"):
        r = run(demo_db, "report", "sessions", "--gap", gap, code=2)
        assert "1m" in r.stderr or "minute" in r.stderr


def test_json_keys_are_snake_case_everywhere(demo_db: Path) -> None:
    keys: set[str] = set()

    def walk(x: object) -> None:
        if isinstance(x, dict):
            keys.update(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for name in REPORT_HELP:
        walk(json.loads(run(demo_db, "report", name, *SCOPE, "--json").stdout))
    assert keys and all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in keys), sorted(keys)


@pytest.mark.parametrize("name", sorted(REPORT_TABLES))
def test_csv_is_one_table_and_table_picks_it(demo_db: Path, name: str) -> None:
    tables = REPORT_TABLES[name]
    json_out = json.loads(run(demo_db, "report", name, *SCOPE, "--json").stdout)
    assert list(json_out) == list(tables)  # the names --help lists are the real ones
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        main = run(demo_db, "report", name, *SCOPE, "--format", fmt).stdout
        assert "#" not in main
        widths = {line.count(sep) for line in main.splitlines()}
        assert len(widths) == 1  # one table: every line has as many fields
    for table in tables:
        out = run(demo_db, "report", name, *SCOPE, "--format", "csv", "--table", table).stdout
        header = out.splitlines()[0].split(",")
        assert header == list(json_out[table][0])
    r = run(demo_db, "report", name, "--table", "nope", code=2)
    assert all(t in r.stderr for t in tables)
    assert ", ".join(tables) in " ".join(run(demo_db, "report", name, "--help").stdout.split())


def test_top_says_how_old_the_data_is(demo_db: Path) -> None:
    out = run(demo_db, "top", "--once").stdout
    assert out.startswith("Not live:") and " days ago" in " ".join(out.split())


def test_long_lists_of_paths_are_cut_not_wrapped_at_80_columns(demo_db: Path) -> None:
    out = run(demo_db, "report", "referrers", *SCOPE, "--table", "referrers", COLUMNS="80").stdout
    lines = [line for line in out.splitlines() if line.strip().startswith(("google.com", "news."))]
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)
    assert any(line.rstrip().endswith("…") for line in lines)
    # Each row is one line: no path continued on the next.
    body = out.split("─" * 10, 1)[1].splitlines()[1:]
    assert all(not line.startswith(" " * 20) for line in body if line.strip())

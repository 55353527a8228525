"""Reports: session numbers checked by hand on a crafted log, cross-checked on a real one;
filters; json/csv/tsv; text from logs shown literally; empty stores."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import logalyse
from logalyse.cli import REPORT_HELP, cli
from logalyse.errors import ConfigError
from logalyse.ingest import ImportOptions, ingest
from logalyse.model import Report
from logalyse.privacy import visitor_id
from logalyse.refresh import refresh
from logalyse.reports import REPORTS
from logalyse.scope import Scope, period
from logalyse.store import SCHEMA_VERSION, Store, sessionise_sql

from .conftest import LOGS

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
A, B, C, D, E = "203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5"


def line(
    ip: str,
    ts: str,
    path: str,
    *,
    method: str = "GET",
    status: int = 200,
    ref: str = "-",
    ua: str = FIREFOX,
) -> str:
    stamp = datetime.fromisoformat(ts).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} 100 "{ref}" "{ua}"'


#: Hand-checked: 11 requests, 1 by a bot; 7 pageviews; visitors A, C, B (day 1) and
#: B (day 2): 4; sessions: A twice (gaps of 29 then 31 minutes), C once (two pageviews
#: in the same second: entry /x, exit /y by line order), B twice (midnight changes the
#: visitor id) = 5, of which 3 bounce; A's first lasts 29 minutes, the others 0 s.
CRAFTED = [
    line(A, "2026-11-01T10:00:00", "/", ref="https://www.google.com/"),
    line(A, "2026-11-01T10:00:00", "/style.css", ref="https://site.example/"),
    line(A, "2026-11-01T10:29:00", "/a", ref="https://site.example/"),
    line(A, "2026-11-01T11:00:00", "/b"),
    line(C, "2026-11-01T12:00:00", "/x", ref="https://news.ycombinator.com/"),
    line(C, "2026-11-01T12:00:00", "/y", ref="https://site.example/x"),
    line(D, "2026-11-01T12:00:00", "/", ua=GOOGLEBOT),
    line(E, "2026-11-01T13:00:00", "/form", method="POST"),
    line(E, "2026-11-01T13:00:01", "/missing", status=404),
    line(B, "2026-11-01T23:50:00", "/night"),
    line(B, "2026-11-02T00:05:00", "/morning?utm_source=newsletter&utm_campaign=nov"),
]


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    log = tmp_path / "access.log"
    log.write_text("".join(x + "\n" for x in CRAFTED))
    db = tmp_path / "db.duckdb"
    with Store(db) as store:
        ingest(store, [log], ImportOptions(sites=("site.example",)))
    return db


def report(db: Path, name: str, **options: Any) -> list[Report]:
    with Store(db, read_only=True) as store:
        return logalyse.report(store, name, **options)


def test_overview_by_hand(crafted: Path) -> None:
    (r,) = report(crafted, "overview")
    assert r.record == {
        "requests": 11,
        "pageviews": 7,
        "visitors": 4,
        "sessions": 5,
        "bounce_rate": pytest.approx(0.6),
        "avg_session_seconds": pytest.approx(29 * 60 / 5),
        "bot_requests": 1,
    }


def test_sessions_by_hand(crafted: Path) -> None:
    summary, per_day, durations, depth, entries, exits = report(crafted, "sessions")
    assert summary.rows == [(5, pytest.approx(0.6), pytest.approx(348.0), 0.0, pytest.approx(1.4))]
    assert [(str(r[0]), r[1], r[2]) for r in per_day.rows] == [
        ("2026-11-01", 4, 3),  # A twice, C, B
        ("2026-11-02", 1, 1),  # B again, with a new id
    ]
    assert {r[0]: r[1] for r in durations.rows} == {
        "0s (one pageview, or all in a second)": 4,
        "10-30m": 1,
    }
    assert {r[0]: r[1] for r in depth.rows} == {"1": 3, "2": 2}
    assert sorted(str(r[0]) for r in entries.rows) == ["/", "/b", "/morning", "/night", "/x"]
    assert sorted(str(r[0]) for r in exits.rows) == ["/a", "/b", "/morning", "/night", "/y"]


def test_session_gap_is_configurable(crafted: Path) -> None:
    assert report(crafted, "overview", gap=timedelta(minutes=20))[0].record["sessions"] == 6
    assert report(crafted, "overview", gap=timedelta(minutes=31))[0].record["sessions"] == 4


def test_bots_count_only_when_asked(crafted: Path) -> None:
    record = report(crafted, "overview", include_bots=True)[0].record
    assert (record["pageviews"], record["sessions"], record["visitors"]) == (8, 6, 5)
    (bots,) = report(crafted, "bots")
    assert [(r[0], r[1]) for r in bots.rows] == [("Googlebot", 1)]


def test_referrers_and_campaigns_by_hand(crafted: Path) -> None:
    sources, hosts = report(crafted, "referrers")
    assert sorted((r[0], r[1]) for r in sources.rows) == [
        ("campaign", 1),
        ("direct", 2),
        ("search", 1),
        ("social", 1),
    ]
    assert [(r[0], r[1], r[2], r[4]) for r in hosts.rows] == [
        ("google.com", "search", 1, "/"),
        ("news.ycombinator.com", "social", 1, "/x"),
    ]
    (campaigns,) = report(crafted, "campaigns")
    assert [r[:4] for r in campaigns.rows] == [("newsletter", None, "nov", 1)]
    (engines,) = report(crafted, "search")
    assert [r[:2] for r in engines.rows] == [("Google", 1)]


def test_other_reports_by_hand(crafted: Path) -> None:
    (nf,) = report(crafted, "not-found")
    assert [r[:4] for r in nf.rows] == [("/missing", 1, 1, 0)]
    (st,) = report(crafted, "status")
    # every hit, humans and bots apart (Googlebot's one 200)
    assert [r[:4] for r in st.rows] == [(200, 10, 9, 1), (404, 1, 1, 0)]
    (pages,) = report(crafted, "pages", limit=3)
    assert pages.rows == [("/", 1, 1), ("/a", 1, 1), ("/b", 1, 1)]
    (pages,) = report(crafted, "pages", include_bots=True)  # Googlebot's / counts too
    assert pages.rows[0] == ("/", 2, 2) and len(pages.rows) == 7
    (visitors,) = report(crafted, "visitors")
    assert [(str(r[0]), r[1], r[2], r[3]) for r in visitors.rows] == [
        ("2026-11-01", 3, 6, 4),
        ("2026-11-02", 1, 1, 1),
    ]
    assert any("sum over the 2 days" in n for n in visitors.notes)
    hours, weekdays = report(crafted, "hours")
    assert {r[0]: r[1] for r in hours.rows if r[1]} == {
        "10:00": 1,
        "11:00": 1,
        "12:00": 1,
        "23:00": 1,
        "00:00": 1,
    }
    assert [(r[0], r[1]) for r in weekdays.rows] == [("Monday", 1), ("Sunday", 4)]
    (countries,) = report(crafted, "countries")
    assert countries.rows[0][0] == "(unknown)"
    assert any("--geoip" in n for n in countries.notes)


def test_filters(crafted: Path) -> None:
    day = "2026-11-02"
    assert report(crafted, "overview", since=day, until=day)[0].record["sessions"] == 1
    assert report(crafted, "overview", path="/a*")[0].record["pageviews"] == 1
    # In Tokyo (UTC+9), B's 23:50 and 00:05 UTC are both on 2 November.
    (_, per_day, *_) = report(crafted, "sessions", tz="Asia/Tokyo")
    assert [(str(r[0]), r[1]) for r in per_day.rows] == [("2026-11-01", 3), ("2026-11-02", 2)]


def test_previous_period(crafted: Path) -> None:
    (r,) = report(crafted, "overview", since="2026-11-02", until="2026-11-02")
    assert r.record["previous"]["sessions"] == 4  # type: ignore[index]
    assert [c.key for c in r.columns] == ["metric", "value", "previous", "change"]


def test_sessions_match_an_independent_count_on_a_real_log(tmp_path: Path) -> None:
    """The SQL sessions against a plain Python sessionisation of the same stored rows."""
    db = tmp_path / "db.duckdb"
    with Store(db) as store:
        ingest(store, [LOGS / "cymnasium-access.log-20240506"])
        pageviews = store.query(
            "SELECT visitor_id, ts, source_id, line_no FROM requests WHERE is_pageview "
            "ORDER BY visitor_id, ts, source_id, line_no"
        )
    expected, last = 0, dict[object, datetime]()
    for vid, ts, _, _ in pageviews:
        if vid not in last or ts - last[vid] > timedelta(minutes=30):
            expected += 1
        last[vid] = ts
    got = report(db, "overview")[0].record
    assert got["sessions"] == expected
    assert expected > 20  # a real log, with real sessions


def _stored_matches_recomputed(store: Store) -> int:
    """The `sessions` table kept by imports equals sessions made afresh from the requests."""
    fresh = sessionise_sql()
    stored_only = store.query(f"SELECT count(*) FROM (FROM sessions EXCEPT ALL {fresh})")
    fresh_only = store.query(f"SELECT count(*) FROM ({fresh} EXCEPT ALL FROM sessions)")
    assert stored_only == fresh_only == [(0,)]
    return int(store.query("SELECT count(*) FROM sessions")[0][0])


def test_stored_sessions_follow_imports_in_pieces_and_out_of_order(tmp_path: Path) -> None:
    """Each import remakes the sessions of the visitors it touched, whatever the order."""
    lines = (LOGS / "cymnasium-access.log-20240506").read_bytes().splitlines(keepends=True)
    # Three pieces, the middle one imported first: its visitors' sessions get split and
    # joined again as the pieces around it arrive.
    cut1, cut2 = len(lines) // 3, 2 * len(lines) // 3
    pieces = [lines[cut1:cut2], lines[:cut1], lines[cut2:]]
    db = tmp_path / "db.duckdb"
    with Store(db) as store:
        counts = []
        for i, piece in enumerate(pieces):
            log = tmp_path / f"piece{i}.log"
            log.write_bytes(b"".join(piece))
            ingest(store, [log])
            counts.append(_stored_matches_recomputed(store))
        whole = tmp_path / "whole.duckdb"
    with Store(whole) as other:
        ingest(other, [LOGS / "cymnasium-access.log-20240506"])
        assert counts[-1] == _stored_matches_recomputed(other)
    assert counts[0] < counts[-1]


@pytest.mark.parametrize("slice_days", [7, 1])
def test_stored_sessions_follow_imports_of_days_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slice_days: int
) -> None:
    """Pieces spanning days (an import's window of a day or more makes every session of its
    span again, not only those of the visitors it saw, a slice of days at a time) keep the
    same sessions."""
    import logalyse.store.sessions as schema
    from logalyse.loggen import write_log

    monkeypatch.setattr(schema, "SESSION_SLICE", timedelta(days=slice_days))

    out = io.BytesIO()
    write_log(out, 6000, seed=3, days=4)
    lines = out.getvalue().splitlines(keepends=True)
    third = len(lines) // 3
    pieces = [lines[third : 2 * third], lines[:third], lines[2 * third :]]
    with Store(tmp_path / "db.duckdb") as store:
        for i, piece in enumerate(pieces):
            log = tmp_path / f"piece{i}.log"
            log.write_bytes(b"".join(piece))
            ingest(store, [log])
            with store.attached() as db:  # a span of more than a day: the long-window path
                lo, hi = db.execute(
                    "SELECT min(ts), max(ts) FROM requests WHERE source_id = ?", [i + 1]
                ).fetchall()[0]
            assert hi - lo > timedelta(days=1)
            sessions = _stored_matches_recomputed(store)
    with Store(tmp_path / "whole.duckdb") as other:
        whole = tmp_path / "whole.log"
        whole.write_bytes(out.getvalue())
        ingest(other, [whole])
        assert sessions == _stored_matches_recomputed(other) > 100


def test_sessions_are_made_even_when_the_remake_outgrows_its_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end-of-run remake runs under a memory limit; a bucket that needs more is made
    again without it (here the limit is too small for any)."""
    import logalyse.ingest.options as limits

    monkeypatch.setattr(limits, "REMAKE_MEMORY_LIMIT", "1MB")
    with Store(tmp_path / "db.duckdb") as store:
        limit = "SELECT current_setting('memory_limit')"
        before = store.query(limit)
        ingest(store, [LOGS / "cymnasium-access.log-20240506"])
        assert _stored_matches_recomputed(store) > 20
        assert store.query(limit) == before  # the store's own limit is back


def test_stored_sessions_are_remade_by_refresh_and_migration(crafted: Path) -> None:
    with Store(crafted) as store:
        # Declaring news.ycombinator.com our own host makes C's referral internal.
        refresh(store, everything=True, sites=["news.ycombinator.com"])
        assert _stored_matches_recomputed(store) == 5
        assert store.query("SELECT source_kind FROM sessions WHERE entry = '/x'") == [("internal",)]
        # A version-1 store (no sessions table) gets it, filled, on the next write.
        store.query("DROP TABLE sessions")
        store.query("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Store(crafted) as store:
        version = store.query("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version == [(str(SCHEMA_VERSION),)]
        assert _stored_matches_recomputed(store) == 5


def test_migration_keeps_visitor_ids_as_the_import_now_computes_them(crafted: Path) -> None:
    """A version-2 store kept 64-bit ids; version 3 keeps their first 32 bits, which is
    what the import computes now, so a visitor seen before and after the upgrade (the
    same day key) stays one visitor."""
    with Store(crafted) as store:
        before = store.query("SELECT line_no, visitor_id FROM requests ORDER BY line_no")
        assert len({v for _, v in before}) > 1
        # Back to a version-2 store: 64-bit ids whose first 32 bits are today's ids.
        for table in ("requests", "sessions"):
            store.query(
                f"ALTER TABLE {table} ALTER visitor_id SET DATA TYPE BIGINT "
                "USING visitor_id::BIGINT * 4294967296 + 12345"
            )
        store.query("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with Store(crafted) as store:
        after = store.query("SELECT line_no, visitor_id FROM requests ORDER BY line_no")
        assert after == before
        assert _stored_matches_recomputed(store) == 5
    key = bytes(range(32))
    digest = hmac.new(key, b"203.0.113.9\0curl/8\0example.com", hashlib.sha256).digest()
    old = int.from_bytes(digest[:8], "big", signed=True)  # what version 2 stored
    assert visitor_id(key, "203.0.113.9", "curl/8", "example.com") == old >> 32


def test_migration_cuts_times_to_whole_seconds(crafted: Path) -> None:
    """Version 4 stores times in whole seconds: a version-3 store's microseconds are cut
    (never rounded up), and the sessions stay the same."""
    with Store(crafted) as store:
        before = store.query("SELECT line_no, ts FROM requests ORDER BY line_no")
        sessions = store.query("SELECT * FROM sessions ORDER BY start, visitor_id")
        # Back to version 3: microsecond times, each just short of the next second.
        for table, column in (("requests", "ts"), ("sessions", "start"), ("sessions", "finish")):
            store.query(
                f"ALTER TABLE {table} ALTER {column} SET DATA TYPE TIMESTAMP "
                f"USING {column} + INTERVAL 999999 MICROSECOND"
            )
        store.query("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with Store(crafted) as store:
        assert store.query("SELECT line_no, ts FROM requests ORDER BY line_no") == before
        assert store.query("SELECT * FROM sessions ORDER BY start, visitor_id") == sessions
        assert store.query(
            "SELECT DISTINCT data_type FROM duckdb_columns() WHERE column_name IN "
            "('ts', 'start', 'finish') AND table_name IN ('requests', 'sessions')"
        ) == [("TIMESTAMP_S",)]
        assert _stored_matches_recomputed(store) == 5


def test_stored_and_computed_sessions_agree_in_reports(crafted: Path) -> None:
    """A gap of 30m01s gives the same sessions on the crafted log (gaps are 29 and 31
    minutes) but is computed from the requests: both paths, every filter."""
    computed = timedelta(minutes=30, seconds=1)
    for scope in (
        {},
        {"since": "2026-11-02", "until": "2026-11-02"},
        {"until": "2026-11-01"},
        {"host": "site.example"},
        {"host": "other.example"},
        {"tz": "Asia/Tokyo"},
    ):
        for name in ("overview", "sessions", "referrers", "entry", "hours", "visitors"):
            stored = [r.rows for r in report(crafted, name, **scope)]
            assert stored == [r.rows for r in report(crafted, name, gap=computed, **scope)], (
                name,
                scope,
            )


def test_every_report_has_a_command() -> None:
    """(Every report's output in every format: test_golden.py.)"""
    assert set(REPORTS) == set(REPORT_HELP)


def test_overview_json_is_one_object(crafted: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--db", str(crafted), "report", "overview", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(doc) == [
        "requests",
        "pageviews",
        "visitors",
        "sessions",
        "bounce_rate",
        "avg_session_seconds",
        "bot_requests",
    ]
    assert doc["sessions"] == 5


def test_json_is_a_list_of_rows_and_csv_has_a_header(crafted: Path, runner: CliRunner) -> None:
    out = runner.invoke(cli, ["--db", str(crafted), "report", "pages", "--format", "json"]).stdout
    rows = json.loads(out)
    assert rows[0].keys() == {"path", "pageviews", "visitors"}
    out = runner.invoke(cli, ["--db", str(crafted), "report", "status", "--format", "csv"]).stdout
    assert list(csv.reader(io.StringIO(out))) == [
        ["status", "requests", "humans", "bots", "share"],
        ["200", "10", "9", "1", "0.9090909090909091"],
        ["404", "1", "1", "0", "0.09090909090909091"],
    ]


def test_text_from_logs_is_shown_literally(tmp_path: Path, runner: CliRunner) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        line(A, "2026-11-01T10:00:00", "/[bold]x[/bold]")
        + "\n"
        + line(A, "2026-11-01T10:00:01", "/esc\\x1B[31mred")
        + "\n"
    )
    db = tmp_path / "db.duckdb"
    with Store(db) as store:
        ingest(store, [log])
    for fmt in ("table", "csv", "tsv", "json"):
        result = runner.invoke(cli, ["--db", str(db), "report", "pages", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout
        assert "[bold]x[/bold]" in result.stdout
        assert "x1B[31mred" in result.stdout  # stored visibly escaped, shown as stored


def test_a_pipe_gets_no_colour(crafted: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "logalyse", "--db", str(crafted), "report", "sessions"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Sessions, all time" in out
    assert "\x1b" not in out


def test_empty_store_and_empty_range(tmp_path: Path, runner: CliRunner) -> None:
    db = tmp_path / "db.duckdb"
    result = runner.invoke(cli, ["--db", str(db), "report", "overview"])
    assert result.exit_code == 1
    assert "no logalyse database" in result.output and "Traceback" not in result.output
    empty = tmp_path / "empty.log"
    empty.write_text("")
    with Store(db) as store:
        ingest(store, [empty])
    result = runner.invoke(cli, ["--db", str(db), "report", "sessions", "--since", "7d"])
    assert result.exit_code == 0, result.output
    assert "No sessions in" in result.stdout
    result = runner.invoke(cli, ["--db", str(db), "report", "pages", "--json"])
    assert json.loads(result.stdout) == []


def test_bad_dates_and_zones_are_usage_errors(crafted: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--db", str(crafted), "report", "pages", "--since", "soon"])
    assert result.exit_code == 2
    assert "is not a date" in result.output
    result = runner.invoke(cli, ["--db", str(crafted), "report", "pages", "--tz", "Mars/Base"])
    assert result.exit_code == 2
    assert "unknown time zone" in result.output


def test_period_words() -> None:
    now = datetime(2026, 11, 28, 12, 0)
    assert period("today", None, now=now)[:2] == (datetime(2026, 11, 28), datetime(2026, 11, 29))
    assert period("30d", None, now=now)[0] == datetime(2026, 10, 30)
    assert period("month", None, now=now)[0] == datetime(2026, 11, 1)
    assert period(None, None, now=now) == (None, None, "all time")
    # Europe/Paris is UTC+1 in November: its day starts at 23:00 UTC the day before.
    assert period("2026-11-02", "2026-11-02", "Europe/Paris")[:2] == (
        datetime(2026, 11, 1, 23),
        datetime(2026, 11, 2, 23),
    )


def test_breakdowns_by_user_agent_count_each_visitor_once(tmp_path: Path) -> None:
    """Browsers/OS/devices add up visitors per user agent: the same as counting them
    distinct per browser, because a visitor id hashes its user agent."""
    db = tmp_path / "db.duckdb"
    with Store(db) as store:
        ingest(store, [LOGS / "cymnasium-access.log-20240506", LOGS / "hackers-access.log"])
    for name, column in (("browsers", "browser"), ("os", "os"), ("devices", "device")):
        (r,) = report(db, name, limit=1000)
        with Store(db, read_only=True) as store:
            expected = store.query(
                f"SELECT coalesce(u.{column}, '(unknown)'), count(DISTINCT r.visitor_id), "
                "count(*) FROM requests r LEFT JOIN user_agents u ON r.ua_id = u.id "
                "WHERE r.is_pageview GROUP BY 1"
            )
        assert {(row[0], row[1], row[2]) for row in r.rows} == set(expected), name
        assert len(expected) > 2


def test_reports_stay_right_while_stored_sessions_lag(crafted: Path, tmp_path: Path) -> None:
    """Commits mark a window whose sessions the end of the run makes again; until then
    (an import running, or killed), reports make sessions from the requests."""
    names = ("overview", "sessions", "referrers", "entry", "hours", "visitors")
    since = until = "2026-11-02"  # the overview's previous period too
    before = {n: [r.rows for r in report(crafted, n)] for n in names}
    dated = [r.rows for r in report(crafted, "overview", since=since, until=until)]
    with Store(crafted) as store:
        # What a kill -9 between a commit and the end of its run leaves behind.
        store.query("DELETE FROM sessions")
        store.query(
            "INSERT INTO meta VALUES ('sessions_dirty', "
            "'2026-11-01T10:00:00.000000|2026-11-02T00:05:00.000000')"
        )
    assert {n: [r.rows for r in report(crafted, n)] for n in names} == before
    assert [r.rows for r in report(crafted, "overview", since=since, until=until)] == dated
    empty = tmp_path / "empty.log"
    empty.write_text("")
    with Store(crafted) as store:
        ingest(store, [empty])  # any later import run finishes the job
        assert store.query("SELECT count(*) FROM meta WHERE key = 'sessions_dirty'") == [(0,)]
        assert _stored_matches_recomputed(store) == 5
    assert {n: [r.rows for r in report(crafted, n)] for n in names} == before


def test_report_checks_its_options_before_reading(tmp_path: Path) -> None:
    """A bad name or value is a ConfigError (exit 2 in the CLI), even with no database."""
    with Store(tmp_path / "none.duckdb", read_only=True) as store:
        for name, options, message in (
            ("nope", {}, "unknown report 'nope': use one of overview, sessions"),
            ("pages", {"tz": "Mars/Base"}, "unknown time zone"),
            ("pages", {"since": "soon"}, "is not a date"),
            ("pages", {"since": "2026-11-03", "until": "2026-11-02"}, "is after"),
            ("pages", {"since": datetime(2026, 11, 2, 12)}, "not a time"),
            ("pages", {"limit": -1}, "limit -1 is out of range"),
            ("sessions", {"gap": timedelta(seconds=59)}, "1 minute at least"),
        ):
            with pytest.raises(ConfigError, match=message):
                logalyse.report(store, name, **options)


def test_report_takes_dates_as_words_do(crafted: Path) -> None:
    words = report(crafted, "overview", since="2026-11-02", until="2026-11-02")
    dates = report(crafted, "overview", since=date(2026, 11, 2), until=date(2026, 11, 2))
    assert [r.rows for r in words] == [r.rows for r in dates]


def test_scope_is_checked_frozen_and_names_its_parameters() -> None:
    since, until = datetime(2026, 11, 2), datetime(2026, 11, 3)
    scope = Scope(
        since=since, until=until, path="/a*", host="WWW.Site.example", sessions_stale=False
    )
    assert scope.params == {"since": since, "until": until, "host": "site.example", "path": "/a*"}
    with pytest.raises(AttributeError):
        scope.limit = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="is before since"):
        Scope(since=until, until=since, sessions_stale=False)
    # A period yet to begin is compared with an empty one, as the overview's columns say.
    future = Scope(since=datetime(2199, 1, 1), sessions_stale=False).previous()
    assert future is not None and future.since == future.until == datetime(2199, 1, 1)


def test_a_query_names_the_parameters_it_uses_in_any_order(crafted: Path) -> None:
    """Named parameters: the SQL is right whatever order it mentions the filters in."""
    scope = Scope(
        since=datetime(2026, 11, 1), until=datetime(2026, 11, 3), path="/*", sessions_stale=False
    )
    where = scope.where("r", pages=True)
    reversed_where = " AND ".join(reversed(where.split(" AND ")))
    with Store(crafted, read_only=True) as store, store.attached() as con:
        counts = [
            con.execute(f"SELECT count(*) FROM requests r WHERE {w}", scope.params).fetchall()
            for w in (where, reversed_where)
        ]
    assert counts[0] == counts[1] == [(7,)]


def test_bots_pageviews_follow_the_asset_extensions(tmp_path: Path) -> None:
    """With include_bots, a bot's page request is a pageview by the import's rule but the
    human condition, asset extensions included."""
    log = tmp_path / "bots.log"
    log.write_text(
        "".join(
            x + "\n"
            for x in (
                line(E, "2026-11-01T10:00:00", "/feed.rss", ua=GOOGLEBOT),
                line(E, "2026-11-01T10:00:01", "/page", ua=GOOGLEBOT),
            )
        )
    )
    with Store(tmp_path / "bots.duckdb") as store:
        ingest(store, [log], ImportOptions(asset_extensions=("rss",)))
        counts = [
            logalyse.report(store, "pages", include_bots=True, **kw)[0].rows  # type: ignore[arg-type]
            for kw in ({}, {"asset_extensions": ("rss",)})
        ]
    assert counts == [[("/feed.rss", 1, 1), ("/page", 1, 1)], [("/page", 1, 1)]]


SCOPES = [
    {},
    {"since": "2026-11-02", "until": "2026-11-03"},  # per hour: two days
    {"since": "2026-11-01", "until": "2026-11-30", "tz": "Europe/Berlin"},
    {"include_bots": True},
    {"path": "/blog/*"},
    {"host": "example.org"},
]


@pytest.mark.parametrize("filters", SCOPES, ids=lambda f: ",".join(f) or "all")
def test_the_dashboards_counted_pageviews_give_every_reports_numbers(
    demo_db: Path, filters: dict[str, Any]
) -> None:
    """Visitors and pageviews counted from the pageviews themselves, from the sessions'
    daily firsts (a report alone, in UTC), or once for the dashboard's tables
    (`counting.counted`): the same reports, whichever way."""
    from logalyse.reports import breakdowns, counting, scope_for
    from logalyse.reports.overview import overview

    scope = scope_for(**filters)
    fns = [overview, breakdowns.countries, breakdowns.browsers, breakdowns.os_families]
    fns.append(breakdowns.devices)
    with Store(demo_db, read_only=True) as store, store.attached() as con:
        expected = [fn(store, scope, counting.from_requests(scope)) for fn in fns]
        assert [fn(store, scope) for fn in fns] == expected  # a report alone
        for unit in ("day", "hour"):
            with counting.counted(con, scope, unit) as counts:
                assert [fn(store, scope, counts) for fn in fns] == expected
        assert any(r.rows for rs in expected[1:] for r in rs) or filters.get("host")


def test_a_report_that_outgrows_the_report_memory_runs_again_without_it(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports run under REPORT_MEMORY_LIMIT (DuckDB then drops the blocks it read); one
    that needs more is run again under the store's limit, with the same answer; an
    instance that holds more than the limit already runs it once, without it. The store
    is left with its own limit."""
    from logalyse.reports import _util

    def setting() -> str:
        (value,) = store.con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
        return str(value)

    with Store(demo_db, read_only=True) as store:
        own = setting()
        expected = [r.rows for r in logalyse.report(store, "visitors")]
        tries: list[str] = []

        def visitors() -> list[Report]:
            tries.append(setting())
            return REPORTS["visitors"](store, Scope(sessions_stale=False))

        def run(cap: str) -> list[str]:
            tries.clear()
            monkeypatch.setattr(_util, "REPORT_MEMORY_LIMIT", cap)
            with store.attached():
                assert [r.rows for r in _util.frugally(store, visitors)] == expected
            assert setting() == own
            return list(tries)

        assert run("40MB") == ["38.1 MiB"]
        assert run("300KB") == ["292.9 KiB", own]  # no query of it fits
        store.con.execute("CREATE TEMP TABLE pinned AS SELECT range AS n FROM range(500000)")
        assert run("1MB") == [own]  # the instance holds 4 MB: the limit cannot be set


@pytest.mark.parametrize("filters", [{}, {"since": "2026-11-02", "until": "2026-11-03"}])
def test_marked_sessions_count_the_visitors_distinct_counting_finds(
    demo_db: Path, filters: dict[str, Any]
) -> None:
    """In UTC, reports count visitors from the sessions marked first of their visitor's
    day (`store.sessions.FIRSTS`); in another zone, by distinct (day, id) pairs. London
    is UTC in November: every report of the demo store (November) must read the same
    either way."""
    with Store(demo_db, read_only=True) as store:
        for name in REPORTS:
            utc = logalyse.report(store, name, tz="UTC", limit=0, **filters)
            london = logalyse.report(store, name, tz="Europe/London", limit=0, **filters)
            assert [r.rows for r in utc] == [r.rows for r in london], name
            assert utc[0].rows or name in ("campaigns",), name

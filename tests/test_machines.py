"""Machines with a browser's user agent, told by behaviour (`enrich.behaviour`): on a
generated log whose ground truth is known (`loggen.machine_lines`), and each rule on a
small hand-made log."""

from __future__ import annotations

import collections
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from logalyse.cli import cli
from logalyse.ingest import ImportOptions, ingest
from logalyse.loggen import generate_lines, machine_kind, machine_lines, with_machines
from logalyse.refresh import refresh
from logalyse.store import Store
from logalyse.tail import tail

from .conftest import clean_env

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.6723.58 Safari/537.36"
)
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)


def entry(ip: str, at: datetime, path: str, ref: str = "-", ua: str = CHROME) -> str:
    ts = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{ts}] "GET {path} HTTP/1.1" 200 512 "{ref}" "{ua}"\n'


def irregular(n: int, gaps: list[int]) -> list[datetime]:
    """`n` times from T0, `gaps` seconds apart in turn: no machine's regularity."""
    return [T0 + timedelta(seconds=sum(gaps[k % len(gaps)] for k in range(i))) for i in range(n)]


def truth(store: Store) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Per machine kind (marked, all) requests; requests marked in all; of people."""
    rows = store.query(
        "SELECT u.ua, r.bot_reason IS NOT NULL, count(*) FROM requests r "
        "JOIN user_agents u ON u.id = r.ua_id WHERE NOT coalesce(u.is_bot, FALSE) GROUP BY ALL"
    )
    kinds: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    marked = people_marked = 0
    for ua, is_marked, n in rows:
        kind = machine_kind(ua)
        marked += n if is_marked else 0
        if kind:
            kinds[kind][0] += n if is_marked else 0
            kinds[kind][1] += n
        elif is_marked:
            people_marked += n
    return {k: (v[0], v[1]) for k, v in kinds.items()}, marked, people_marked


def test_precision_and_recall_on_a_log_with_known_machines(tmp_path: Path) -> None:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    log = tmp_path / "access.log"
    lines = with_machines(
        generate_lines(20_000, seed=3, start=start, days=2),
        machine_lines(seed=3, start=start, days=2, per_kind=2),
    )
    log.write_text("".join(line + "\n" for line in lines))
    with Store(tmp_path / "s.duckdb") as store:
        stats = ingest(store, [log])
        kinds, marked, people_marked = truth(store)
        sessions_of_machines = store.query(
            "SELECT count(*) FROM sessions s JOIN requests r USING (visitor_id) "
            "WHERE r.bot_reason IS NOT NULL"
        )[0][0]
    recall = {k: got / n for k, (got, n) in kinds.items()}
    assert recall == {"rate": 1.0, "regular": 1.0, "repeat": 1.0, "shape": 1.0, "stealth": 0.0}
    assert people_marked == 0  # precision 1.0: no person was taken for a machine
    assert sum(stats.machines.values()) == marked
    assert sessions_of_machines == 0


def test_each_rule_and_its_threshold(tmp_path: Path) -> None:
    lines = []

    # 130 pageviews in one hour: a machine; 100: a person (a busy one).
    lines += [
        entry("198.51.100.1", at, f"/r{i}")
        for i, at in enumerate(irregular(130, [10, 35, 15, 30, 20]))
    ]
    lines += [
        entry("198.51.100.2", at, f"/h{i}")
        for i, at in enumerate(irregular(100, [20, 50, 30, 40, 25]))
    ]
    # A page every 30 s, twelve times: a poller; the same with a person's irregular gaps: not.
    lines += [entry("198.51.100.3", T0 + timedelta(seconds=30 * i), "/status") for i in range(12)]
    gaps = [7, 90, 31, 240, 12, 60, 18, 300, 45, 9, 120]
    lines += [
        entry("198.51.100.4", T0 + timedelta(seconds=sum(gaps[:i])), f"/q{i}") for i in range(12)
    ]
    # /contact 25 times, no asset: a machine; a person who loads the pages' assets: not.
    lines += [
        entry("198.51.100.5", at, "/contact", "https://example.org/")
        for at in irregular(25, [300, 420, 660, 240, 500])
    ]
    for at in irregular(25, [300, 420, 660, 240, 500]):
        lines.append(entry("198.51.100.6", at, "/docs"))
        lines.append(entry("198.51.100.6", at, "/static/site.css", "https://example.org/docs"))
    # Ordinary visitors, who load the pages' assets (so a page without them stands out).
    for v in range(10, 16):
        for n, at in enumerate(irregular(3, [95 + v, 140])):
            lines.append(entry(f"198.51.100.{v}", at, f"/blog/{n}"))
            lines.append(entry(f"198.51.100.{v}", at, "/static/site.css", "https://example.org/"))
    # A user agent no browser sends.
    lines += [
        entry("198.51.100.7", T0 + timedelta(minutes=i), "/", ua="Mozilla/5.0") for i in range(3)
    ]
    log = tmp_path / "access.log"
    log.write_text("".join(sorted(lines, key=lambda x: x.split("[")[1])))

    def marked(db: Path, *flags: str) -> dict[str, str]:
        r = CliRunner(env=clean_env()).invoke(cli, ["--db", str(db), "import", *flags, str(log)])
        assert r.exit_code == 0, r.output
        with Store(db, read_only=True) as store:
            rows = store.query(
                "SELECT DISTINCT regexp_replace(path, '[0-9]+$', ''), bot_reason FROM requests "
                "WHERE bot_reason IS NOT NULL"
            )
        return {str(p): str(why) for p, why in rows}

    by_default = marked(tmp_path / "a.duckdb")
    assert by_default == {
        "/r": "(behaviour: rate)",
        "/status": "(behaviour: regular)",
        "/contact": "(behaviour: repeat)",
        "/": "(behaviour: not a browser)",
    }
    stricter = marked(
        tmp_path / "b.duckdb", "--max-hourly-pageviews", "90", "--max-page-repeats", "30"
    )
    assert "/contact" not in stricter  # 25 repeats are fewer than 30
    assert stricter["/h"] == "(behaviour: rate)"  # the busy person, above 90 an hour
    with Store(tmp_path / "b.duckdb", read_only=True) as store:
        (rate_visitors,) = store.query(
            "SELECT count(DISTINCT visitor_id) FROM requests WHERE bot_reason = '(behaviour: rate)'"
        )[0]
    assert rate_visitors == 2  # the busy person too, above 90 an hour


def test_a_machine_seen_over_several_flushes_stays_a_machine(tmp_path: Path) -> None:
    """tail stores a scraper's requests a few at a time: once marked, the rest of its day
    is marked too, and enrich --refresh marks it again."""
    log = tmp_path / "access.log"
    log.write_text("")
    db = tmp_path / "s.duckdb"
    pages = [
        entry("198.51.100.9", at, f"/p{i}") for i, at in enumerate(irregular(160, [9, 31, 17]))
    ]
    stop = threading.Event()
    seen: list[int] = []

    def feed(stats: Any) -> None:
        seen.append(stats.imported)
        done = len(seen) - 1
        if done * 40 < len(pages):
            with open(log, "a") as f:
                f.write("".join(pages[done * 40 : done * 40 + 40]))
        else:
            stop.set()

    with Store(db) as store:
        tail(store, log, ImportOptions(), every=0.05, stop=stop, on_flush=feed)
        reasons = store.query("SELECT bot_reason, count(*) FROM requests GROUP BY ALL")
        assert reasons == [("(behaviour: rate)", 160)]
        assert store.query("SELECT count(*) FROM sessions")[0][0] == 0
        refresh(store, everything=True)
        assert store.query("SELECT bot_reason, count(*) FROM requests GROUP BY ALL") == reasons


@pytest.mark.parametrize("assets", [False, True])
def test_repeat_needs_a_site_whose_visitors_load_assets(tmp_path: Path, assets: bool) -> None:
    """Where no visitor loads an asset (served from elsewhere), a repeated page proves
    nothing: people who reload a page are not marked."""
    lines = []
    for v in range(1, 6):
        for at in irregular(25, [290 + v, 410, 333, 505]):  # reloads, by hand
            lines.append(entry(f"198.51.100.{v}", at, "/live"))
            if assets and v > 1:
                lines.append(entry(f"198.51.100.{v}", at, "/app.js", "https://example.org/live"))
    log = tmp_path / "access.log"
    log.write_text("".join(sorted(lines, key=lambda x: x.split("[")[1])))
    with Store(tmp_path / "s.duckdb") as store:
        ingest(store, [log])
        marked = store.query(
            "SELECT count(DISTINCT visitor_id) FROM requests WHERE bot_reason IS NOT NULL"
        )[0][0]
    assert marked == (1 if assets else 0)

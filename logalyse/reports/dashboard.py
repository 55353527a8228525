"""The dashboard's data: the headline numbers beside the previous period, visitors and
pageviews over time, sessions by weekday and hour, and the reports a person looks at,
each section saying why it is empty when it is. `render.html` draws it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import duckdb

from ..enrich.geo import credit_for
from ..model import Dashboard, Section, Series, Tile
from ..scope import Scope, sessions_from
from ..store import Store, site_hosts
from ._util import frugally, settled
from .breakdowns import bots, browsers, countries, devices, not_found, os_families, pages
from .counting import Counted, Unit, counted
from .overview import overview
from .referrers import campaigns, referrers, search
from .sessions import shape

#: Up to this long a period is drawn per hour, longer ones per day.
HOURLY_UP_TO = timedelta(days=2)


def dashboard(store: Store, scope: Scope, *, title: str | None = None) -> Dashboard:
    """Everything the dashboard shows for `scope` (its `limit` is rows per table).

    Example:
        >>> import pathlib, tempfile
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     d = dashboard(s, Scope(sessions_stale=False))
        >>> [t.label for t in d.tiles][:3], d.series.labels
        (['Visitors', 'Pageviews', 'Sessions'], [])
    """
    return frugally(store, lambda: _dashboard(store, scope, title))


def _dashboard(store: Store, scope: Scope, title: str | None) -> Dashboard:
    with store.attached() as db:
        scope = settled(db, scope)
        (with_country,) = db.execute(
            "SELECT count(*) FROM requests WHERE country IS NOT NULL"
        ).fetchall()[0]
        hosts = site_hosts(db)
        kinds = db.execute("SELECT value FROM meta WHERE key = 'geoip_kind'").fetchall()
        geoip_kind = kinds[0][0] if kinds else None
        unit = _unit(db, scope)
        with counted(db, scope, unit or "day") as counts:
            series = _series(db, scope, counts, unit)
            (now,) = overview(store, scope, counts)
            places = countries(store, scope, counts)
            agents = [f(store, scope, counts) for f in (devices, browsers, os_families)]
        heat = _heatmap(db, scope)
        (newest_all,) = db.execute("SELECT max(ts) FROM requests").fetchall()[0]
        by_name = {r.name: r for r in shape(store, scope)}
        sources = referrers(store, scope)
        sections = [
            Section("sources", "Where visitors came from", sources, wide=True),
            Section("campaigns", "Campaigns", campaigns(store, scope)),
            Section("search", "Search engines", search(store, scope)),
            Section("pages", "Top pages", pages(store, scope)),
            Section("entry", "Entry pages", [by_name["entry"]]),
            Section("exit", "Exit pages", [by_name["exit"]]),
            Section("countries", "Countries", places),
            Section("devices", "Devices", agents[0]),
            Section("browsers", "Browsers", agents[1]),
            Section("os", "Operating systems", agents[2]),
            Section("heatmap", "Sessions by weekday and hour", [], wide=True),
            Section(
                "durations",
                "How long sessions last, and how many pages",
                [by_name["durations"], by_name["depth"]],
            ),
            Section("not-found", "Not found (404)", not_found(store, scope)),
            Section("bots", "Bots", bots(store, replace(scope, include_bots=True))),
        ]
    record = now.record
    requests = int(record["requests"])  # type: ignore[call-overload]
    before = record.get("previous") if isinstance(record.get("previous"), dict) else {}
    assert isinstance(before, dict)

    def tile(label: str, key: str, kind: str, up_is_good: bool = True) -> Tile:
        return Tile(label, kind, record.get(key), before.get(key), up_is_good, bool(before))

    tiles = [
        tile("Visitors", "visitors", "int"),
        tile("Pageviews", "pageviews", "int"),
        tile("Sessions", "sessions", "int"),
        tile("Bounce rate", "bounce_rate", "pct", up_is_good=False),
        tile("Average session", "avg_session_seconds", "seconds"),
        tile("Bot requests", "bot_requests", "int", up_is_good=False),
    ]
    for s in sections:
        s.why_empty = _why_empty(s, requests, with_country)
    if not any(v for row in heat for v in row):
        next(s for s in sections if s.key == "heatmap").why_empty = "No sessions in this period."
    return Dashboard(
        title=title or (", ".join(sorted(hosts)) if hosts else "Site statistics"),
        period=scope.label,
        tz=scope.tz,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        newest=newest_all.strftime("%Y-%m-%d %H:%M") if newest_all else None,
        tiles=tiles,
        series=series,
        heatmap=heat,
        sections=sections,
        credits=[c for c in [credit_for(geoip_kind)] if c],
        notes=[
            "Visitors are distinct daily ids: the same person on two days counts twice, by "
            "design (the key that would link them is destroyed). Pageviews, visitors and "
            "sessions count people, not bots"
            + (" (bots included here)." if scope.include_bots else ".")
        ]
        + (["The newest requests are still being imported."] if scope.sessions_stale else [])
        + ([] if requests else ["No request in this period."]),
    )


def _why_empty(section: Section, requests: int, with_country: int) -> str:
    if any(r.rows for r in section.reports) or section.key == "heatmap":
        return ""
    if not requests:
        return "No request in this period."
    if section.key == "countries" and not with_country:
        return (
            "No country is known: requests were imported without a GeoIP database "
            "(logalyse import --geoip FILE.mmdb)."
        )
    if section.key == "campaigns":
        return "No campaign in this period: no request with utm_source (or ref) in its query."
    if section.key == "search":
        return "No visit from a search engine in this period."
    if section.key == "not-found":
        return "No page was missing in this period."
    if section.key == "bots":
        return "No bot in this period."
    return "Nothing to show in this period."


def _unit(db: duckdb.DuckDBPyConnection, scope: Scope) -> Unit | None:
    """Per hour for a period of two days or less, else per day; None: no pageview."""
    start, end = scope.since, scope.until
    if start is None or end is None:
        bounds = db.execute(
            f"SELECT min(ts), max(ts) FROM requests r WHERE {scope.where('r', pages=True)}",
            scope.params,
        ).fetchall()[0]
        start, end = start or bounds[0], end or bounds[1]
    if start is None or end is None:
        return None
    return "hour" if end - start <= HOURLY_UP_TO else "day"


def _series(
    db: duckdb.DuckDBPyConnection, scope: Scope, counts: Counted, unit: Unit | None
) -> Series:
    """Visitors and pageviews per `unit`, as `counts` has them."""
    if unit is None:
        return Series("day")
    sql = f"SELECT bucket, visitors, pageviews FROM {counts.series} ORDER BY bucket"
    rows = db.execute(sql, scope.params_for(sql)).fetchall()
    fmt = "%m-%d %Hh" if unit == "hour" else "%Y-%m-%d"
    out = Series(unit)
    for b, v, p in rows:
        out.labels.append(b.strftime(fmt))
        out.visitors.append(float(v))
        out.pageviews.append(float(p))
    return out


def _heatmap(db: duckdb.DuckDBPyConnection, scope: Scope) -> list[list[float]]:
    """Sessions by weekday (Monday first) and hour of their start, in the scope's zone."""
    grid = [[0.0] * 24 for _ in range(7)]
    start = scope.local("start")
    for dow, hour, n in db.execute(
        f"SELECT isodow({start}), hour({start}), count(*) FROM {sessions_from(scope)} GROUP BY ALL",
        scope.params,
    ).fetchall():
        grid[int(dow) - 1][int(hour)] = float(n)
    return grid

"""Breakdowns of requests and visitors: pages, entry/exit, 404s, status, browsers, OS,
devices, countries, hours, bots and daily visitors."""

from __future__ import annotations

from ..enrich.geo import credit_for
from ..model import Column, Report
from ..scope import Scope, sessions_from
from ..store import Store
from ._util import bots_note, empty_message, rows
from .counting import Counted, counts_for, day_visitors

_VISITOR_NOTE = "visitors: distinct daily visitor ids (ids change at midnight)"


def _by(
    store: Store,
    scope: Scope,
    name: str,
    title: str,
    expr: str,
    label: str,
    counts: Counted | None = None,
) -> Report:
    """Visitors and pageviews by user agent (`expr` on `u`, user_agents) or by country, as
    `counts` has them (`counting`), else counted from the requests."""
    counts = counts or counts_for(scope)
    if expr.startswith("u."):
        # A visitor id hashes its user agent, so each visitor has one: distinct visitors
        # per user agent add up per browser/OS/device. Counting per user agent id first
        # joins a few thousand rows instead of every request (5x faster on 5M).
        sql = f"""
            SELECT coalesce({expr}, '(unknown)') AS value, sum(v)::BIGINT AS visitors,
                   sum(n)::BIGINT AS pageviews, sum(v) / sum(sum(v)) OVER () AS share
            FROM {counts.agents} per LEFT JOIN user_agents u ON per.ua_id = u.id
            GROUP BY 1 ORDER BY visitors DESC, value LIMIT {int(scope.limit)}
        """
    else:
        sql = f"""
            SELECT coalesce(value, '(unknown)') AS value, visitors::BIGINT AS visitors,
                   pageviews::BIGINT AS pageviews, visitors / sum(visitors) OVER () AS share
            FROM {counts.countries}
            ORDER BY visitors DESC, value LIMIT {int(scope.limit)}
        """
    found = rows(store, scope, sql)
    return Report(
        name,
        f"{title}, {scope.label}",
        [
            Column(name.replace("-", "_"), label),
            Column("visitors", "visitors", "int"),
            Column("pageviews", "pageviews", "int"),
            Column("share", "share", "pct"),
            Column("bar", "", "bar", of="visitors"),
        ],
        [(*r, None) for r in found],
        [f"{_VISITOR_NOTE}; {bots_note(scope)}"],
        empty=empty_message("pageviews", scope),
    )


def browsers(store: Store, scope: Scope, counts: Counted | None = None) -> list[Report]:
    """Visitors by browser family (`counts`: see `counting.counted`)."""
    return [_by(store, scope, "browser", "Browsers", "u.browser", "browser", counts)]


def os_families(store: Store, scope: Scope, counts: Counted | None = None) -> list[Report]:
    """Visitors by operating system."""
    return [_by(store, scope, "os", "Operating systems", "u.os", "OS", counts)]


def devices(store: Store, scope: Scope, counts: Counted | None = None) -> list[Report]:
    """Visitors by device type: desktop, mobile, tablet, other (bot with --include-bots)."""
    return [_by(store, scope, "device", "Devices", "u.device", "device", counts)]


def countries(store: Store, scope: Scope, counts: Counted | None = None) -> list[Report]:
    """Visitors by country (ISO code)."""
    report = _by(store, scope, "country", "Countries", "r.country", "country", counts)
    (known,) = store.query("SELECT count(*) FROM requests WHERE country IS NOT NULL")[0]
    if not known:
        report.notes.append(
            "no request has a country: run `logalyse geoip update` once (DB-IP's free "
            "database, used by imports from then on) or import with --geoip PATH; countries "
            "cannot be added to stored requests"
        )
    credit = credit_for(store.meta("geoip_kind"))
    if credit:
        report.notes.append(credit)
    return [report]


def pages(store: Store, scope: Scope) -> list[Report]:
    """Pageviews and visitors by path."""
    found = rows(
        store,
        scope,
        # The top paths by pageviews first; visitors only for those, counted per rank
        # (a lighter hash than per path).
        f"""
        WITH top AS (
            SELECT path, count(*) AS pageviews,
                   row_number() OVER (ORDER BY count(*) DESC, path) AS rank
            FROM requests r WHERE {scope.where("r", pages=True)}
            GROUP BY 1 ORDER BY pageviews DESC, path LIMIT {int(scope.limit)}
        ), seen AS (
            SELECT top.rank,
                   {day_visitors(f"{scope.local('r.ts')}::DATE", "r.visitor_id")} AS visitors
            FROM requests r JOIN top ON r.path = top.path
            WHERE {scope.where("r", pages=True)} GROUP BY 1
        )
        SELECT top.path, top.pageviews, seen.visitors FROM top JOIN seen USING (rank)
        ORDER BY top.pageviews DESC, top.path
        """,
    )
    return [
        Report(
            "pages",
            f"Pages, {scope.label}",
            [
                Column("path", "path"),
                Column("pageviews", "pageviews", "int"),
                Column("visitors", "visitors", "int"),
            ],
            found,
            [f"{_VISITOR_NOTE}; {bots_note(scope)}"],
            empty=empty_message("pageviews", scope),
        )
    ]


def _ends(store: Store, scope: Scope, end: str, name: str, title: str) -> Report:
    found = rows(
        store,
        scope,
        f"""
        SELECT {end} AS path, count(*) AS sessions, avg(bounce::INT) AS bounce_rate,
               count(*) / sum(count(*)) OVER () AS share
        FROM {sessions_from(scope)} GROUP BY 1 ORDER BY sessions DESC, path
        LIMIT {int(scope.limit)}
        """,
    )
    return Report(
        name,
        f"{title}, {scope.label}",
        [
            Column("path", "path"),
            Column("sessions", "sessions", "int"),
            Column("bounce_rate", "bounce", "pct"),
            Column("share", "share", "pct"),
        ],
        found,
        [f"a bounce is a session of one pageview; {bots_note(scope)}"],
        empty=empty_message("sessions", scope),
    )


def entry(store: Store, scope: Scope) -> list[Report]:
    """Pages sessions start on."""
    return [_ends(store, scope, "entry", "entry", "Entry pages")]


def exit_pages(store: Store, scope: Scope) -> list[Report]:
    """Pages sessions end on."""
    return [_ends(store, scope, "exit", "exit", "Exit pages")]


def not_found(store: Store, scope: Scope) -> list[Report]:
    """404s by path, by humans and by bots (both, whatever --include-bots says)."""
    found = rows(
        store,
        scope,
        f"""
        SELECT path, count(*) AS requests,
               count(*) FILTER (NOT coalesce(is_bot, FALSE)) AS humans,
               count(*) FILTER (coalesce(is_bot, FALSE)) AS bots,
               max(referrer_host) FILTER (source_kind = 'internal') AS linked_from_site
        FROM requests r WHERE {scope.where("r", bots=True)} AND status = 404
        GROUP BY 1 ORDER BY requests DESC, path LIMIT {int(scope.limit)}
        """,
    )
    return [
        Report(
            "not_found",
            f"Not found (404), {scope.label}",
            [
                Column("path", "path"),
                Column("requests", "requests", "int"),
                Column("humans", "humans", "int"),
                Column("bots", "bots", "int"),
                Column("linked_from_site", "broken link on"),
            ],
            found,
            [f"{HITS_NOTE}; a broken link on your own site shows its host"],
            empty=empty_message("404s", scope),
        )
    ]


def status(store: Store, scope: Scope) -> list[Report]:
    """Requests by HTTP status code: hits, by humans and by bots (both, whatever
    --include-bots says), as `not-found` counts them."""
    found = rows(
        store,
        scope,
        f"""
        SELECT status, count(*) AS requests,
               count(*) FILTER (NOT coalesce(is_bot, FALSE)) AS humans,
               count(*) FILTER (coalesce(is_bot, FALSE)) AS bots,
               count(*) / sum(count(*)) OVER () AS share
        FROM requests r WHERE {scope.where("r", bots=True)} GROUP BY 1 ORDER BY 1
        """,
    )
    return [
        Report(
            "status",
            f"Status codes, {scope.label}",
            [
                Column("status", "status", "int"),
                Column("requests", "requests", "int"),
                Column("humans", "humans", "int"),
                Column("bots", "bots", "int"),
                Column("share", "share", "pct"),
                Column("bar", "", "bar", of="requests"),
            ],
            [(*r, None) for r in found],
            [HITS_NOTE],
            empty=empty_message("requests", scope),
        )
    ]


#: The rule of the reports that count hits (status, not-found, the overview's requests).
HITS_NOTE = "hits: every request, assets and bots included (humans and bots apart)"


def bots(store: Store, scope: Scope) -> list[Report]:
    """Requests by bot, with the last time each was seen."""
    found = rows(
        store,
        scope,
        f"""
        SELECT coalesce(r.bot_reason, u.bot_name, '(unnamed)') AS bot, sum(n)::BIGINT AS requests,
               sum(n) / sum(sum(n)) OVER () AS share, max(r.last_seen) AS last_seen
        FROM (SELECT bot_reason, ua_id, count(*) AS n, max(ts) AS last_seen FROM requests r
              WHERE {scope.where("r", bots=True)} AND coalesce(r.is_bot, FALSE) GROUP BY 1, 2) r
        LEFT JOIN user_agents u ON r.ua_id = u.id
        GROUP BY 1 ORDER BY requests DESC, bot LIMIT {int(scope.limit)}
        """,
    )
    return [
        Report(
            "bots",
            f"Bots, {scope.label}",
            [
                Column("bot", "bot"),
                Column("requests", "requests", "int"),
                Column("share", "share of bot requests", "pct"),
                Column("last_seen", "last seen (UTC)", "datetime"),
            ],
            found,
            [
                "bots: ua-parser spiders, crawler-user-agents, monitors, no user agent; "
                "(behaviour: ...) are machines with a browser's user agent"
            ],
            empty=empty_message("bot requests", scope),
        )
    ]


def hours(store: Store, scope: Scope) -> list[Report]:
    """Sessions by the hour of day and by the weekday they started, in --tz."""
    start = scope.local("start")
    sessions = sessions_from(scope)
    by_hour = rows(
        store,
        scope,
        f"SELECT hour({start}) AS h, count(*) FROM {sessions} GROUP BY 1 ORDER BY 1",
    )
    by_day = rows(
        store,
        scope,
        f"SELECT isodow({start}) AS d, dayname({start}), count(*) FROM {sessions} "
        "GROUP BY 1, 2 ORDER BY 1",
    )
    counts: dict[object, object] = {h: n for h, n in by_hour}
    empty = empty_message("sessions", scope)
    zone = f"hours in {scope.tz} (--tz)"
    return [
        Report(
            "hours",
            f"Sessions by hour, {scope.label}",
            [
                Column("hour", "hour", "text"),
                Column("sessions", "sessions", "int"),
                Column("bar", "", "bar", of="sessions"),
            ],
            [(f"{h:02d}:00", counts.get(h, 0), None) for h in range(24)] if by_hour else [],
            [zone],
            empty=empty,
        ),
        Report(
            "weekdays",
            "By weekday",
            [
                Column("weekday", "weekday"),
                Column("sessions", "sessions", "int"),
                Column("bar", "", "bar", of="sessions"),
            ],
            [(name, n, None) for _, name, n in by_day],
            empty=empty,
        ),
    ]


def visitors(store: Store, scope: Scope) -> list[Report]:
    """Distinct visitors per day, with pageviews and sessions."""
    found = rows(
        store,
        scope,
        f"""
        SELECT p.day, p.visitors, p.pageviews, coalesce(s.sessions, 0)
        FROM (SELECT {scope.local("ts")}::DATE AS day, count(DISTINCT visitor_id) AS visitors,
                     count(*) AS pageviews
              FROM requests r WHERE {scope.where("r", pages=True)} GROUP BY 1) p
        LEFT JOIN (SELECT {scope.local("start")}::DATE AS day, count(*) AS sessions
                   FROM {sessions_from(scope)} GROUP BY 1) s ON p.day = s.day
        ORDER BY p.day
        """,
    )
    total = sum(int(r[1]) for r in found)  # type: ignore[call-overload]
    notes = [
        "a visitor is a daily id: the same person on two days is two visitors, by design "
        "(the key that links their requests is destroyed when the day ends)",
    ]
    if len(found) > 1:
        notes.append(f"sum over the {len(found)} days (not distinct people): {total:,}")
    return [
        Report(
            "visitors",
            f"Visitors per day, {scope.label}",
            [
                Column("day", "day", "date"),
                Column("visitors", "visitors", "int"),
                Column("pageviews", "pageviews", "int"),
                Column("sessions", "sessions", "int"),
                Column("bar", "", "bar", of="visitors"),
            ],
            [(*r, None) for r in found],
            notes,
            empty=empty_message("pageviews", scope),
        )
    ]

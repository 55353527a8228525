"""Where sessions came from: source categories, referrer hosts, campaigns, search engines.

Sessions take the source of their first pageview; self-referrals (`internal`) and
referrer spam are left out of the referrer tables.
"""

from __future__ import annotations

from ..model import Column, Report
from ..scope import Scope, sessions_from
from ..store import Store
from ._util import bots_note, empty_message, rows
from .counting import session_visitors


def referrers(store: Store, scope: Scope) -> list[Report]:
    """Sessions and visitors by source category, then by referrer host with the pages
    each brought visitors to."""
    kinds = rows(
        store,
        scope,
        f"""
        SELECT coalesce(source_kind, 'direct') AS kind, count(*) AS sessions,
               {session_visitors(scope, "first_of_kind")} AS visitors,
               sum(count(*)) OVER () AS total
        FROM {sessions_from(scope)} WHERE coalesce(source_kind, '') NOT IN ('spam')
        GROUP BY 1 ORDER BY sessions DESC, kind
        """,
    )
    hosts = rows(
        store,
        scope,
        f"""
        WITH s AS (
            SELECT * FROM {sessions_from(scope)}
            WHERE referrer_host IS NOT NULL AND source_kind NOT IN ('internal', 'spam')
        ), landing AS (
            SELECT referrer_host, string_agg(entry, '  ' ORDER BY n DESC, entry) AS pages
            FROM (
                SELECT referrer_host, entry, count(*) AS n,
                       row_number() OVER (PARTITION BY referrer_host
                                          ORDER BY count(*) DESC, entry) AS rank_in_host
                FROM s GROUP BY 1, 2
            ) WHERE rank_in_host <= 3 GROUP BY 1
        ), kinds AS (
            -- The host's most frequent source kind; a tie goes to the first by name
            -- (mode() would pick one at random: a campaign link on chatgpt.com is a tie).
            SELECT referrer_host, first(source_kind ORDER BY n DESC, source_kind) AS kind
            FROM (SELECT referrer_host, source_kind, count(*) AS n FROM s GROUP BY 1, 2)
            GROUP BY 1
        ), top AS (
            SELECT referrer_host, count(*) AS sessions,
                   {session_visitors(scope, "first_of_referrer")} AS visitors
            FROM s GROUP BY 1 ORDER BY sessions DESC, referrer_host LIMIT {int(scope.limit)}
        )
        SELECT t.referrer_host, k.kind, t.sessions, t.visitors, l.pages
        FROM top t LEFT JOIN landing l ON t.referrer_host = l.referrer_host
        LEFT JOIN kinds k ON t.referrer_host = k.referrer_host
        ORDER BY t.sessions DESC, t.referrer_host
        """,
    )
    empty = empty_message("sessions", scope)
    return [
        Report(
            "sources",
            f"Sources, {scope.label}",
            [
                Column("source", "source"),
                Column("sessions", "sessions", "int"),
                Column("visitors", "visitors", "int"),
                Column("share", "share", "pct"),
                Column("bar", "", "bar", of="sessions"),
            ],
            [(k, s, v, s / t if t else 0.0, None) for k, s, v, t in kinds],  # type: ignore[operator]
            [
                "a session's source is that of its first pageview; spam is left out",
                f"visitors: distinct daily ids; {bots_note(scope)}",
            ],
            empty=empty,
        ),
        Report(
            "referrers",
            "Referrer hosts (self-referrals and spam left out)",
            [
                Column("referrer_host", "referrer"),
                Column("source", "source"),
                Column("sessions", "sessions", "int"),
                Column("visitors", "visitors", "int"),
                Column("landing_pages", "top landing pages"),
            ],
            hosts,
            empty=empty_message("sessions from referring sites", scope),
        ),
    ]


def campaigns(store: Store, scope: Scope) -> list[Report]:
    """Sessions by campaign parameters (utm_source, utm_medium, utm_campaign; or ref)."""
    found = rows(
        store,
        scope,
        f"""
        SELECT utm_source, utm_medium, utm_campaign, count(*) AS sessions,
               {session_visitors(scope, "first_of_campaign")} AS visitors,
               sum(pageviews) AS pageviews,
               avg(bounce::INT) AS bounce_rate
        FROM {sessions_from(scope)} WHERE source_kind = 'campaign'
        GROUP BY ALL ORDER BY sessions DESC, utm_source, utm_medium, utm_campaign
        LIMIT {int(scope.limit)}
        """,
    )
    return [
        Report(
            "campaigns",
            f"Campaigns, {scope.label}",
            [
                Column("utm_source", "source"),
                Column("utm_medium", "medium"),
                Column("utm_campaign", "campaign"),
                Column("sessions", "sessions", "int"),
                Column("visitors", "visitors", "int"),
                Column("pageviews", "pageviews", "int"),
                Column("bounce_rate", "bounce", "pct"),
            ],
            found,
            ["sessions whose first pageview had utm_source (or ref) in its query string"],
            empty=empty_message("sessions from campaigns (utm_source or ref)", scope),
        )
    ]


def search(store: Store, scope: Scope) -> list[Report]:
    """Sessions from search engines (the search terms are not in referrers any more)."""
    found = rows(
        store,
        scope,
        f"""
        SELECT source_name, count(*) AS sessions,
               {session_visitors(scope, "first_of_engine")} AS visitors,
               avg(bounce::INT) AS bounce_rate, sum(count(*)) OVER () AS total
        FROM {sessions_from(scope)} WHERE source_kind = 'search'
        GROUP BY 1 ORDER BY sessions DESC, source_name LIMIT {int(scope.limit)}
        """,
    )
    return [
        Report(
            "search",
            f"Search engines, {scope.label}",
            [
                Column("engine", "engine"),
                Column("sessions", "sessions", "int"),
                Column("visitors", "visitors", "int"),
                Column("bounce_rate", "bounce", "pct"),
                Column("share", "share", "pct"),
                Column("bar", "", "bar", of="sessions"),
            ],
            [(e, s, v, b, s / t if t else 0.0, None) for e, s, v, b, t in found],  # type: ignore[operator]
            empty=empty_message("sessions from search engines", scope),
        )
    ]

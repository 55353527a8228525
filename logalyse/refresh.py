"""Redo enrichment over stored rows, after new rules, lists or settings.

What the store still holds can be classified again: user agents (browser, device, bot),
pageviews, referrer sources and self-referrals. What needed the raw address cannot:
countries (a GeoIP database added later only serves imports from then on) and visitor
ids. This module updates rows; it never reads a log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .enrich import (
    DEFAULT_ASSET_EXTENSIONS,
    DEFAULT_NON_PAGES,
    agent_columns,
    classify_agent,
    classify_host,
    is_asset_sql,
    normalise_host,
    pageview_sql,
    source_sql,
)
from .enrich.behaviour import Behaviour, mark_machines
from .store import Store, columns_sql, remake_all_sessions, site_hosts, transaction


@dataclass
class RefreshStats:
    """What `refresh` changed."""

    user_agents: int = 0  # user agents classified
    requests: int = 0  # requests whose enrichment was recomputed
    without_country: int = 0  # requests without a country (cannot be redone)
    machines: dict[str, int] = field(default_factory=dict)  # requests marked, by reason


def refresh(
    store: Store,
    *,
    everything: bool = False,
    sites: Sequence[str] = (),
    asset_extensions: Sequence[str] = DEFAULT_ASSET_EXTENSIONS,
    non_pages: Sequence[str] = DEFAULT_NON_PAGES,
    behaviour: Behaviour | None = None,
) -> RefreshStats:
    """Classify user agents and requests again (all of them, or only those never classified).

    `sites` adds to the site's own hosts remembered by the imports.

    Example:
        >>> import tempfile, pathlib
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     refresh(s).requests
        0
    """
    stats = RefreshStats()
    with store.writer_lock(nothing="nothing was classified"), store.attached() as db:
        where = "" if everything else "WHERE is_bot IS NULL"
        agents = db.execute(f"SELECT id, ua FROM user_agents {where}").fetchall()
        classified = [classify_agent(ua) for _, ua in agents]
        own = {normalise_host(h) for h in sites} | set(site_hosts(db))
        hosts = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT referrer_host FROM requests WHERE referrer_host IS NOT NULL"
                + ("" if everything else " AND source_kind IS NULL")
            ).fetchall()
        ]
        kinds = [classify_host(h) for h in hosts]
        agents_sql, agent_params = columns_sql(
            "a", id=("INTEGER", [i for i, _ in agents]), **agent_columns(classified)
        )
        refs_sql, ref_params = columns_sql(
            "f",
            host=("VARCHAR", hosts),
            kind=("VARCHAR", [k for k, _ in kinds]),
            name=("VARCHAR", [n for _, n in kinds]),
        )
        kind, name = source_sql(
            "f.kind", "f.name", "r.utm_source", "r.referrer_host", "r.host", sorted(own)
        )
        is_asset = is_asset_sql("r.path", asset_extensions, non_pages)
        pageview = pageview_sql("u.is_bot", "r.method", "r.status", is_asset)
        with transaction(db):
            db.execute(
                "UPDATE user_agents AS u SET browser = a.browser, "
                "browser_major = a.browser_major, os = a.os, device = a.device, "
                f"is_bot = a.is_bot, bot_name = a.bot_name FROM {agents_sql} WHERE u.id = a.id",
                agent_params,
            )
            (n,) = db.execute(
                f"""
                    UPDATE requests AS r SET
                        is_bot = x.is_bot, is_pageview = x.is_pageview,
                        source_kind = x.source_kind, source_name = x.source_name
                    FROM (
                        SELECT r.rowid AS rid, u.is_bot, {pageview} AS is_pageview,
                            {kind} AS source_kind, {name} AS source_name
                        FROM requests r JOIN user_agents u ON u.id = r.ua_id
                        LEFT JOIN {refs_sql} ON f.host = r.referrer_host
                        {"" if everything else "WHERE r.is_bot IS NULL OR r.source_kind IS NULL"}
                    ) x WHERE r.rowid = x.rid
                    """,
                ref_params,
            ).fetchall()[0]
            if own:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('site_hosts', ?)",
                    [",".join(sorted(own))],
                )
            if everything:  # is_bot came again from the user agents: machines anew
                db.execute("UPDATE requests SET bot_reason = NULL WHERE bot_reason IS NOT NULL")
            stats.machines = mark_machines(db, behaviour=behaviour)
            if n or agents or stats.machines:  # pageviews, sources, devices: so may sessions
                remake_all_sessions(db)
        stats.user_agents = len(agents)
        stats.requests = int(n)
        (stats.without_country,) = db.execute(
            "SELECT count(*) FROM requests WHERE country IS NULL"
        ).fetchall()[0]
    return stats

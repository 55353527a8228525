"""Machines that send a browser's user agent, told by what they do: per visitor-day (a
visitor id lives one day), in SQL over the stored requests.

- `rate`: more pageviews within an hour than a person makes (a scraper);
- `regular`: many pageviews at machine-regular intervals (a poller, a monitor);
- `repeat`: one page fetched again and again, and never an asset (images, styles) by the
  same visitor, on a site whose visitors do load assets (a form spammer, a checker);
- `not a browser`: a user agent in which ua-parser finds no browser and no OS, and that
  is short or has no `(...)` part as every browser's has (`Mozilla/5.0` alone,
  `nlpproject.info research`, `Mozilla/4.0 (compatible;)`); a long one of a browser
  ua-parser does not know (an old feature phone's) is left alone.

Marked requests stay stored, as bots (`is_bot`, no pageview) with `bot_reason` like
`(behaviour: rate)`, which `report bots` lists. What this cannot tell: a machine that
browses like a person (a few pages at a reading pace, with their assets).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

#: The reasons, as `bot_reason` stores them.
REASONS = {
    "rate": "(behaviour: rate)",
    "regular": "(behaviour: regular)",
    "repeat": "(behaviour: repeat)",
    "shape": "(behaviour: not a browser)",
}


@dataclass(frozen=True)
class Behaviour:
    """The thresholds (settings: `--max-hourly-pageviews`, `--max-page-repeats`)."""

    hourly_pageviews: int = 120  # `rate`: more pageviews than this within 60 minutes
    page_repeats: int = 20  # `repeat`: one path fetched more often than this, no asset
    regular_pageviews: int = 12  # `regular`: at least this many pageviews, whose gaps
    regular_spread: float = 0.1  # vary by less than this share of their mean
    #: `repeat` applies where at least this share of visitors with two pageviews or more
    #: loaded an asset: on a site whose assets come from elsewhere, nobody does.
    asset_share: float = 0.3

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if not (1 <= self.hourly_pageviews <= 1_000_000 and 1 <= self.page_repeats <= 1_000_000):
            raise ConfigError("behaviour thresholds go from 1 to 1,000,000")


def mark_machines(
    db: Any,
    since: datetime | None = None,
    until: datetime | None = None,
    behaviour: Behaviour | None = None,
    *,
    schema: str = "",
) -> dict[str, int]:
    """Mark as bots the requests of visitor-days that behave like machines, among those
    between `since` and `until` (whole visitor-days around them: a day either side), and
    the later requests of visitor-days marked before. Returns requests marked, by reason.

    `db` is a connection on which `{schema}requests` and `{schema}user_agents` are the
    store's tables (`schema`: "db." for the importer's, which attaches the store as `db`).
    """
    b = behaviour or Behaviour()
    window = "TRUE"
    params: list[Any] = []
    if since is not None and until is not None:
        window = "r.ts >= ? AND r.ts <= ?"
        params = [since - timedelta(days=1), until + timedelta(days=1)]
    db.execute("CREATE OR REPLACE TEMP TABLE marked_rows (rid BIGINT, reason VARCHAR)")
    try:
        for query in _bucket_queries(
            db, f"{schema}requests", f"{schema}user_agents", window, params, b
        ):
            db.execute(f"INSERT INTO marked_rows {query}", params * 2)
        counts = db.execute("SELECT reason, count(*) FROM marked_rows GROUP BY ALL").fetchall()
        if counts:
            db.execute(
                f"UPDATE {schema}requests AS r SET is_bot = TRUE, is_pageview = FALSE, "
                f"bot_reason = {reason_sql('m.reason')} FROM marked_rows m WHERE r.rowid = m.rid"
            )
    finally:
        db.execute("DROP TABLE IF EXISTS marked_rows")
    return {str(k): int(n) for k, n in counts}


#: Pageviews judged per statement (visitors hashed into buckets of about this many).
BUCKET_PAGEVIEWS = 100_000
_OK = "(r.status BETWEEN 200 AND 299 OR r.status = 304) AND r.method = 'GET'"


def _bucket_queries(
    db: Any,
    requests: str,
    agents: str,
    window: str,
    params: list[Any],
    b: Behaviour,
    *,
    visitors: bool = False,
) -> list[str]:
    """The statements that judge the window's visitors, one per bucket of visitors (each
    judged whole: memory stays that of one bucket's sort). Each selects (request rowid,
    reason), or with `visitors` (visitor_id, host, reason)."""
    human = f"{window} AND NOT coalesce(r.is_bot, FALSE) AND r.visitor_id IS NOT NULL"
    (pageviews, share) = db.execute(
        f"""
        WITH per AS (  -- whether this site's visitors (of two pageviews or more) load assets
            SELECT count(*) FILTER (r.is_pageview) AS pageviews,
                   count(*) FILTER (NOT r.is_pageview AND {_OK}) AS assets
            FROM {requests} r WHERE {human} GROUP BY r.visitor_id, r.host
        )
        SELECT coalesce(sum(pageviews), 0),
               coalesce(avg((assets > 0)::INT) FILTER (pageviews >= 2), 0)
        FROM per
        """,
        params,
    ).fetchall()[0]
    buckets = max(1, -(-int(pageviews) // BUCKET_PAGEVIEWS))
    return [
        _marked_sql(
            requests,
            agents,
            window,
            f"hash(r.visitor_id) % {buckets} = {k}" if buckets > 1 else "TRUE",
            b,
            float(share),
            visitors=visitors,
        )
        for k in range(buckets)
    ]


def machine_marks(db: Any, requests: str, agents: str, behaviour: Behaviour | None = None) -> str:
    """Judge every visitor of `requests` (a table or a view) and keep the machines in a
    temporary table, (visitor_id, host, reason) with host '' for none: for a reader that
    cannot mark rows in place (exports read with --from). Returns the table's name."""
    db.execute(
        "CREATE OR REPLACE TEMP TABLE machine_marks (visitor_id INTEGER, host VARCHAR, "
        "reason VARCHAR)"
    )
    for query in _bucket_queries(db, requests, agents, "TRUE", [], behaviour or Behaviour(),
                                 visitors=True):  # fmt: skip
        db.execute(f"INSERT INTO machine_marks {query}")
    return "machine_marks"


def reason_sql(key: str) -> str:
    """SQL: the stored reason (`(behaviour: rate)`) of a short key column (`rate`)."""
    from ..quote import sql_literal

    return (
        f"CASE {key} "
        + " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in REASONS.items())
        + " END"
    )


def _marked_sql(
    requests: str,
    agents: str,
    window: str,
    bucket: str,
    b: Behaviour,
    asset_share: float,
    *,
    visitors: bool = False,
) -> str:
    """SQL: (request rowid, reason) of the machines among one bucket of visitors; with
    `visitors`, (visitor_id, host, reason)."""
    ok, rid = _OK, "NULL" if visitors else "r.rowid"
    query = f"""
        WITH h AS (  -- what people sent, as far as their user agents say, in the window
            SELECT {rid} AS rid, r.visitor_id, coalesce(r.host, '') AS host, r.ts, r.path,
                   r.is_pageview,
                   NOT r.is_pageview AND {ok} AS is_asset, u.browser, u.os, u.ua
            FROM {requests} r LEFT JOIN {agents} u ON u.id = r.ua_id
            WHERE {window} AND NOT coalesce(r.is_bot, FALSE) AND r.visitor_id IS NOT NULL
              AND {bucket}
        ),
        pv AS (
            SELECT visitor_id, host, ts, path,
                   epoch(ts) - epoch(lag(ts) OVER (PARTITION BY visitor_id, host ORDER BY ts))
                       AS gap
            FROM h WHERE is_pageview
        ),
        per AS (
            SELECT visitor_id, host, count(*) AS pageviews,
                   avg(gap) AS mean_gap, stddev_pop(gap) AS spread
            FROM pv GROUP BY ALL
        ),
        hourly AS (  -- the most pageviews in any 60 minutes
            SELECT visitor_id, host, max(n) AS top FROM (
                SELECT visitor_id, host, count(*) OVER (
                    PARTITION BY visitor_id, host ORDER BY ts
                    RANGE BETWEEN INTERVAL 3599 SECONDS PRECEDING AND CURRENT ROW
                ) AS n FROM pv
            ) GROUP BY ALL
        ),
        repeats AS (
            SELECT visitor_id, host, max(n) AS top FROM (
                SELECT visitor_id, host, count(*) AS n FROM pv GROUP BY visitor_id, host, path
            ) GROUP BY ALL
        ),
        assets AS (
            SELECT visitor_id, host, count(*) FILTER (is_asset) AS n FROM h GROUP BY ALL
        ),
        shapes AS (
            SELECT DISTINCT visitor_id, host FROM h
            WHERE coalesce(browser, 'Other') = 'Other' AND coalesce(os, 'Other') = 'Other'
              AND (length(ua) < 30 OR NOT contains(ua, '('))
        ),
        marked AS (
            SELECT visitor_id, host, min(reason) AS reason FROM (
                SELECT visitor_id, host, 'rate' AS reason FROM hourly WHERE top > $rate
                UNION ALL
                SELECT visitor_id, host, 'regular' FROM per
                WHERE pageviews >= $regular AND mean_gap >= 1
                  AND spread <= $spread * mean_gap
                UNION ALL
                SELECT r.visitor_id, r.host, 'repeat' FROM repeats r
                JOIN assets a USING (visitor_id, host)
                WHERE r.top > $repeats AND a.n = 0 AND $share >= $asset_share
                UNION ALL
                SELECT visitor_id, host, 'shape' FROM shapes
                UNION ALL  -- marked by an earlier run: what came since is theirs too
                SELECT DISTINCT r.visitor_id, coalesce(r.host, ''), {_reason_key("r.bot_reason")}
                FROM {requests} r
                WHERE {window} AND r.bot_reason IS NOT NULL AND {bucket}
            ) GROUP BY ALL
        )
    """
    query += (
        "SELECT visitor_id, host, reason FROM marked"
        if visitors
        else "SELECT h.rid, m.reason FROM h JOIN marked m USING (visitor_id, host)"
    )
    for name, value in (
        ("$rate", int(b.hourly_pageviews)),
        ("$regular", int(b.regular_pageviews)),
        ("$spread", float(b.regular_spread)),
        ("$repeats", int(b.page_repeats)),
        ("$asset_share", float(b.asset_share)),
        ("$share", asset_share),
    ):
        query = query.replace(name, repr(value))
    return query


def _reason_key(column: str) -> str:
    """SQL: the short key (rate, regular...) of a stored reason."""
    from ..quote import sql_literal

    return (
        "CASE "
        + " ".join(
            f"WHEN {column} = {sql_literal(v)} THEN {sql_literal(k)}" for k, v in REASONS.items()
        )
        + " END"
    )

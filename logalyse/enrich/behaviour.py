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
    window = "TRUE"
    params: list[Any] = []
    if since is not None and until is not None:
        window = "r.ts >= ? AND r.ts <= ?"
        params = [since - timedelta(days=1), until + timedelta(days=1)]
    requests = f"{schema}requests"
    marks = _judge(db, requests, f"{schema}user_agents", window, params, behaviour or Behaviour())
    try:
        db.execute(
            "CREATE OR REPLACE TEMP TABLE marked_rows AS "
            f"SELECT r.rowid AS rid, m.reason FROM {requests} r JOIN {marks} m "
            "ON m.visitor_id = r.visitor_id AND m.host = coalesce(r.host, '') "
            f"WHERE {_human(window)}",
            params,
        )
        counts = db.execute("SELECT reason, count(*) FROM marked_rows GROUP BY ALL").fetchall()
        if counts:
            db.execute(
                f"UPDATE {requests} AS r SET is_bot = TRUE, is_pageview = FALSE, "
                f"bot_reason = {reason_sql('m.reason')} FROM marked_rows m WHERE r.rowid = m.rid"
            )
    finally:
        db.execute("DROP TABLE IF EXISTS marked_rows")
        db.execute(f"DROP TABLE IF EXISTS {marks}")
    return {str(k): int(n) for k, n in counts}


def machine_marks(db: Any, requests: str, agents: str, behaviour: Behaviour | None = None) -> str:
    """Judge every visitor of `requests` (a table or a view) and keep the machines in a
    temporary table, (visitor_id, host, reason) with host '' for none: for a reader that
    cannot mark rows in place (exports read with --from). Returns the table's name."""
    return _judge(db, requests, agents, "TRUE", [], behaviour or Behaviour())


#: Pageviews of candidate visitors judged per statement (in hashed buckets of visitors).
BUCKET_PAGEVIEWS = 100_000
_OK = "(r.status BETWEEN 200 AND 299 OR r.status = 304) AND r.method = 'GET'"


def _human(window: str) -> str:
    """SQL: the requests of the window that people sent, as far as user agents say."""
    return f"{window} AND NOT coalesce(r.is_bot, FALSE) AND r.visitor_id IS NOT NULL"


def _judge(
    db: Any, requests: str, agents: str, window: str, params: list[Any], b: Behaviour
) -> str:
    """Judge the visitors of the window into TEMP TABLE machine_marks (visitor_id, host
    ('' for none), reason); return its name.

    One pass counts each visitor's pageviews and assets; only visitors with enough
    pageviews for `rate`, `regular` or `repeat` (the candidates: few) have their
    pageviews sorted, in buckets, so that time and memory follow the candidates, not the
    window. `not a browser` comes from the user agents; marks of an earlier run carry on.
    """
    human = _human(window)
    least = min(b.regular_pageviews, b.hourly_pageviews + 1, b.page_repeats + 1)
    db.execute(
        f"""CREATE OR REPLACE TEMP TABLE machine_visitors AS
        SELECT r.visitor_id, coalesce(r.host, '') AS host,
               count(*) FILTER (r.is_pageview) AS pageviews,
               count(*) FILTER (NOT r.is_pageview AND {_OK}) AS assets
        FROM {requests} r WHERE {human} GROUP BY ALL""",
        params,
    )
    (share, candidates) = db.execute(
        # whether this site's visitors (of two pageviews or more) load assets at all
        "SELECT coalesce(avg((assets > 0)::INT) FILTER (pageviews >= 2), 0), "
        f"coalesce(sum(pageviews) FILTER (pageviews >= {least}), 0) FROM machine_visitors"
    ).fetchall()[0]
    db.execute(f"DELETE FROM machine_visitors WHERE pageviews < {least}")
    db.execute(
        "CREATE OR REPLACE TEMP TABLE machine_marks (visitor_id INTEGER, host VARCHAR, "
        "reason VARCHAR)"
    )
    buckets = max(1, -(-int(candidates) // BUCKET_PAGEVIEWS))
    for k in range(buckets):
        bucket = f"hash(c.visitor_id) % {buckets} = {k}" if buckets > 1 else "TRUE"
        db.execute(
            f"INSERT INTO machine_marks {_pageview_rules(requests, human, bucket, b, share)}",
            params,
        )
    shape = (
        "coalesce(u.browser, 'Other') = 'Other' AND coalesce(u.os, 'Other') = 'Other' "
        "AND (length(u.ua) < 30 OR NOT contains(u.ua, '('))"
    )
    db.execute(
        f"""INSERT INTO machine_marks
        SELECT DISTINCT r.visitor_id, coalesce(r.host, ''), 'shape'
        FROM {requests} r JOIN (SELECT id FROM {agents} u WHERE {shape}) s ON s.id = r.ua_id
        WHERE {human}
        UNION ALL  -- marked by an earlier run: what came since is theirs too
        SELECT DISTINCT r.visitor_id, coalesce(r.host, ''), {_reason_key("r.bot_reason")}
        FROM {requests} r WHERE {window} AND r.bot_reason IS NOT NULL""",
        params * 2,
    )
    db.execute(
        "CREATE OR REPLACE TEMP TABLE machine_marks AS SELECT visitor_id, host, "
        "min(reason) AS reason FROM machine_marks GROUP BY ALL"
    )
    db.execute("DROP TABLE machine_visitors")
    return "machine_marks"


def _pageview_rules(requests: str, human: str, bucket: str, b: Behaviour, share: float) -> str:
    """SQL: (visitor_id, host, reason) of the candidates of one bucket that `rate`,
    `regular` or `repeat` marks, from their pageviews."""
    query = f"""
        WITH pv AS (
            SELECT r.visitor_id, c.host, r.ts, r.path,
                   epoch(r.ts) - epoch(lag(r.ts) OVER (
                       PARTITION BY r.visitor_id, c.host ORDER BY r.ts)) AS gap
            FROM {requests} r
            JOIN machine_visitors c
              ON c.visitor_id = r.visitor_id AND c.host = coalesce(r.host, '')
            WHERE {human} AND r.is_pageview AND {bucket}
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
        )
        SELECT visitor_id, host, 'rate' FROM hourly WHERE top > $rate
        UNION ALL
        SELECT visitor_id, host, 'regular' FROM per
        WHERE pageviews >= $regular AND mean_gap >= 1 AND spread <= $spread * mean_gap
        UNION ALL
        SELECT r.visitor_id, r.host, 'repeat' FROM repeats r
        JOIN machine_visitors c USING (visitor_id, host)
        WHERE r.top > $repeats AND c.assets = 0 AND $share >= $asset_share
    """
    for name, value in (
        ("$rate", int(b.hourly_pageviews)),
        ("$regular", int(b.regular_pageviews)),
        ("$spread", float(b.regular_spread)),
        ("$repeats", int(b.page_repeats)),
        ("$asset_share", float(b.asset_share)),
        ("$share", float(share)),
    ):
        query = query.replace(name, repr(value))
    return query


def reason_sql(key: str) -> str:
    """SQL: the stored reason (`(behaviour: rate)`) of a short key column (`rate`)."""
    from ..quote import sql_literal

    return (
        f"CASE {key} "
        + " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in REASONS.items())
        + " END"
    )


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

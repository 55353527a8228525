"""Sessions in SQL: a visitor's pageviews with no gap over 30 minutes, made from the stored
requests and kept in the `sessions` table; the window of time whose sessions an import
made stale (`meta.sessions_dirty`), and making them again.

Nothing here parses a log or renders a report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .tx import transaction

#: The gap that ends a session in the stored `sessions` table (reports may ask for another).
SESSION_GAP_SECONDS = 30 * 60
#: The longest a day key can last (a 25-hour DST day), with a margin: no visitor id, so no
#: session, spans more.
DAY_KEY_SPAN = timedelta(hours=26)


def sessionise_sql(where: str = "r.is_pageview", gap: int = SESSION_GAP_SECONDS) -> str:
    """SQL: one row per session of the requests `r` (joined with user agents `u`) matching
    `where`, in the columns of the `sessions` table.

    A session is one visitor's run of requests with no gap over `gap` seconds. One sort
    (visitor, time, then what the rows hold, so that tied timestamps always give the same
    answer, however the requests were split into files, servers or imports) finds each
    session's first and last request; a second pass over those rows only pairs them up.
    Only the first row carries the source, country, device and user agent. A visitor's
    sessions are made together (from all their pageviews), so which of them is the first
    of its UTC day, or the first of the day from its source, is known: `FIRSTS`.
    """
    firsts = ",\n".join(
        f"row_number() OVER (PARTITION BY visitor_id, start::DATE{', ' + by if by else ''} "
        f"ORDER BY start) = 1 AS {name}"
        for name, by in FIRSTS.items()
    )
    payload = (
        "r.host, r.path, r.source_kind, r.source_name, r.referrer_host, r.utm_source, "
        "r.utm_medium, r.utm_campaign, r.country, u.device, r.ua_id"
    )
    return f"""
        SELECT visitor_id, host, start, finish, pageviews, entry, exit, source_kind,
               source_name, referrer_host, utm_source, utm_medium, utm_campaign, country,
               device, ua_id, {firsts}
        FROM (
            SELECT visitor_id, host, ts AS start,
                   CASE WHEN last THEN ts ELSE lead(ts) OVER w2 END AS finish,
                   (CASE WHEN last THEN rn ELSE lead(rn) OVER w2 END - rn + 1)::INTEGER
                       AS pageviews,
                   path AS entry, CASE WHEN last THEN path ELSE lead(path) OVER w2 END AS exit,
                   new, source_kind, source_name, referrer_host, utm_source, utm_medium,
                   utm_campaign, country, device, ua_id
            FROM (
                SELECT r.visitor_id, r.ts, {payload}, row_number() OVER w AS rn,
                       coalesce(date_diff('second', lag(r.ts) OVER w, r.ts) > {gap}, TRUE)
                           AS new,
                       coalesce(date_diff('second', r.ts, lead(r.ts) OVER w) > {gap}, TRUE)
                           AS last
                FROM requests r LEFT JOIN user_agents u ON r.ua_id = u.id
                -- Do Not Track / Global Privacy Control: counted, never in a session.
                WHERE ({where}) AND r.visitor_id IS NOT NULL
                WINDOW w AS (PARTITION BY r.visitor_id ORDER BY r.ts, {TIES})
            )
            WHERE new OR last
            WINDOW w2 AS (PARTITION BY visitor_id ORDER BY rn)
        )
        WHERE new
    """


#: Marks of a session that is its visitor's first of the (UTC) day among their sessions
#: sharing what a report groups by (and filters on): reports count daily visitors by
#: counting marked sessions, without a distinct count (`reports.counting`, `referrers`).
FIRSTS = {
    "first_of_day": "",  # visitors; by country, user agent, day
    "first_of_kind": "coalesce(source_kind, 'direct')",  # by source
    "first_of_referrer": "referrer_host, source_kind IN ('internal', 'spam')",  # by referrer
    "first_of_engine": "source_kind, source_name",  # by search engine
    "first_of_campaign": "source_kind, utm_source, utm_medium, utm_campaign",  # by campaign
}

#: The order of a visitor's pageviews within one second: by what they hold, not by where
#: they were read (a log line's place is not comparable across servers or files).
TIES = (
    "r.path, r.host, r.referrer_host, r.source_kind, r.source_name, r.utm_source, "
    "r.utm_medium, r.utm_campaign, r.country"
)

#: Pageviews sessionised per statement: memory stays bounded whatever the store's size.
SESSION_CHUNK_PAGEVIEWS = 75_000


def insert_sessions(
    db: Any,
    where: str = "r.is_pageview",
    params: Sequence[Any] = (),
    *,
    keep: str = "TRUE",
    keep_params: Sequence[Any] = (),
    chunk: int = SESSION_CHUNK_PAGEVIEWS,
) -> None:
    """Insert the sessions of the requests `r` matching `where` (those passing `keep`).

    A session never spans two visitors, so visitors are split into buckets of about
    SESSION_CHUNK_PAGEVIEWS pageviews, one statement each: the sort that finds sessions
    then needs memory for one bucket, not for the whole window.
    """
    (pageviews,) = db.execute(
        f"SELECT count(*) FROM requests r WHERE {where}", list(params)
    ).fetchall()[0]
    buckets = max(1, -(-pageviews // chunk))
    for i in range(buckets):
        part = f"({where}) AND hash(r.visitor_id) % {buckets} = {i}" if buckets > 1 else where
        db.execute(
            f"INSERT INTO sessions BY NAME SELECT * FROM ({sessionise_sql(part)}) WHERE {keep} "
            "ORDER BY start",  # in time order, start compresses to a few bits a session
            [*params, *keep_params],
        )


def mark_sessions_dirty(db: Any, window: str, params: Sequence[Any] = ()) -> None:
    """Widen the time window whose sessions must be made again (`meta.sessions_dirty`) to
    cover `window`, a query giving one row (first, last); nothing when first is NULL.

    Call it in the transaction that changes the requests, so the store always knows which
    sessions may be stale; `remake_dirty_sessions` makes them and clears the mark.
    """
    db.execute(
        f"""
        INSERT OR REPLACE INTO meta
        SELECT 'sessions_dirty', strftime(least(n.lo, o.lo), '%Y-%m-%dT%H:%M:%S.%f')
               || '|' || strftime(greatest(n.hi, o.hi), '%Y-%m-%dT%H:%M:%S.%f')
        FROM (SELECT lo, hi FROM ({window}) w(lo, hi)) n,
             (SELECT min(split_part(value, '|', 1)::TIMESTAMP) AS lo,
                     max(split_part(value, '|', 2)::TIMESTAMP) AS hi
              FROM meta WHERE key = 'sessions_dirty') o
        WHERE n.lo IS NOT NULL
        """,
        list(params),
    )


def dirty_window(db: Any) -> tuple[datetime, datetime] | None:
    """The time window whose stored sessions may be stale (an import ran or is running)."""
    rows = db.execute("SELECT value FROM meta WHERE key = 'sessions_dirty'").fetchall()
    if not rows:
        return None
    lo, hi = rows[0][0].split("|")
    return datetime.fromisoformat(lo), datetime.fromisoformat(hi)


#: A long dirty window is made again in slices of this many days of session starts: each
#: bucket of visitors then scans its slice (and a day either side), not the whole window,
#: so that the remake of a long history grows with its length, not with its square.
#: Shorter slices sort their margins again and again: four weeks was the best measured.
SESSION_SLICE = timedelta(days=28)


def remake_dirty_sessions(db: Any) -> None:
    """Make again, in one transaction, every session that may involve the requests of the
    dirty window, then clear the mark.

    Only visitors with a request in the window can have a session changed. A visitor id
    lives one day key (25 hours at most), so their sessions starting within a day span of
    the window are made from their requests within two. A tail's flush thus sorts the
    pageviews of the few visitors it saw, not those of two days of traffic. A window of a
    day or more (an import of whole logs) holds nearly every visitor of its span anyway:
    then every session of the span is made again, without the set of visitors seen
    (which grew with the window), a slice of SESSION_SLICE at a time.
    """
    window = dirty_window(db)
    if window is None:
        return
    lo, hi = window
    near = [lo - DAY_KEY_SPAN, hi + DAY_KEY_SPAN]
    with transaction(db):
        if hi - lo < DAY_KEY_SPAN:
            seen = "visitor_id IN (SELECT visitor_id FROM requests WHERE ts >= $3 AND ts <= $4)"
            db.execute(
                f"DELETE FROM sessions WHERE start >= $1 AND start <= $2 AND {seen}",
                [*near, lo, hi],
            )
            insert_sessions(
                db,
                f"r.is_pageview AND r.ts >= $1 AND r.ts <= $2 AND r.{seen}",
                [lo - 2 * DAY_KEY_SPAN, hi + 2 * DAY_KEY_SPAN, lo, hi],
                keep="start >= $5 AND start <= $6",
                keep_params=near,
            )
        else:
            db.execute("DELETE FROM sessions WHERE start >= $1 AND start <= $2", near)
            _insert_sessions_sliced(db, near[0], near[1])
        db.execute("DELETE FROM meta WHERE key = 'sessions_dirty'")


def _insert_sessions_sliced(
    db: Any, first: datetime, last: datetime, chunk: int = SESSION_CHUNK_PAGEVIEWS
) -> None:
    """Insert the sessions starting from `first` to `last` (inclusive), SESSION_SLICE of
    starts at a time, each made from the pageviews of its slice and a day span either side
    (a visitor id lives one day key)."""
    start = first
    while start <= last:
        end = min(start + SESSION_SLICE, last + timedelta(microseconds=1))
        insert_sessions(
            db,
            "r.is_pageview AND r.ts >= $1 AND r.ts < $2",
            [start - DAY_KEY_SPAN, end + DAY_KEY_SPAN],
            keep="start >= $3 AND start < $4",
            keep_params=[start, end],
            chunk=chunk,
        )
        start = end


def remake_all_sessions(db: Any, chunk: int = SESSION_CHUNK_PAGEVIEWS) -> None:
    """Make every stored session again (within the caller's transaction), after the rules
    that classify requests changed; `chunk` pageviews sorted per statement."""
    db.execute("DELETE FROM sessions")
    (first, last) = db.execute("SELECT min(ts), max(ts) FROM requests").fetchall()[0]
    if first is not None:
        _insert_sessions_sliced(db, first, last, chunk)
    db.execute("DELETE FROM meta WHERE key = 'sessions_dirty'")

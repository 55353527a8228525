"""The store's DDL, as SQL strings, and the migrations between schema versions.

Migration N brings a database from version N-1 to N; version 0 is an empty file.
Each runs in one transaction with the version bump, so a crash leaves either version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from .tx import transaction

SCHEMA_VERSION = 5
#: The gap that ends a session in the stored `sessions` table (reports may ask for another).
SESSION_GAP_SECONDS = 30 * 60
#: The longest a day key can last (a 25-hour DST day), with a margin: no visitor id, so no
#: session, spans more.
DAY_KEY_SPAN = timedelta(hours=26)

_V1 = (
    """
    CREATE TABLE meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR
    )
    """,
    # One row per input: a log file (identified by its first bytes) or a named stream.
    """
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        kind VARCHAR NOT NULL,          -- 'file' or 'stream'
        name VARCHAR NOT NULL,          -- path last read from, or the stream's name
        device UBIGINT,
        inode UBIGINT,
        fingerprint VARCHAR,            -- blake2b-128 of the first fp_len content bytes
        fp_len INTEGER,
        compressed BOOLEAN NOT NULL DEFAULT FALSE,
        size BIGINT,                    -- file size (on disk) when last read
        complete BOOLEAN NOT NULL DEFAULT FALSE,  -- a compressed file read to its end
        byte_offset BIGINT NOT NULL DEFAULT 0,    -- content bytes imported
        lines BIGINT NOT NULL DEFAULT 0,          -- lines consumed up to byte_offset
        position VARCHAR,               -- streams: JSON {replica: {ts, fingerprints}}
        first_import TIMESTAMP,
        last_import TIMESTAMP
    )
    """,
    """
    CREATE TABLE user_agents (
        id INTEGER PRIMARY KEY,
        ua VARCHAR NOT NULL UNIQUE,
        browser VARCHAR,
        browser_major VARCHAR,
        os VARCHAR,
        device VARCHAR,                 -- desktop | mobile | tablet | bot | other
        is_bot BOOLEAN,
        bot_name VARCHAR
    )
    """,
    # One row per request. No raw address: visitor_id is a keyed hash under a day key
    # that lives outside the database and is destroyed once the day is closed.
    """
    CREATE TABLE requests (
        ts TIMESTAMP NOT NULL,          -- UTC
        visitor_id BIGINT NOT NULL,     -- HMAC-SHA256(day key; address, UA, host); INTEGER in v3
        host VARCHAR,
        method VARCHAR,
        path VARCHAR,
        query VARCHAR,                  -- scrubbed: utm_* and allow-listed keys only
        protocol VARCHAR,
        status SMALLINT,
        bytes BIGINT,
        referrer VARCHAR,               -- without query string or fragment
        ua_id INTEGER,                  -- user_agents.id
        source_id INTEGER NOT NULL,     -- sources.id
        line_no BIGINT NOT NULL,        -- line in the source; (source_id, line_no) is unique
        country VARCHAR,                -- ISO 3166 code, looked up before hashing
        city VARCHAR,
        is_bot BOOLEAN,
        is_pageview BOOLEAN,
        referrer_host VARCHAR,
        source_kind VARCHAR,            -- direct|search|social|ai|campaign|website|internal
        source_name VARCHAR,
        utm_source VARCHAR,
        utm_medium VARCHAR,
        utm_campaign VARCHAR
    )
    """,
    # Days that had a key: when it was made and when it was destroyed (the key is not here).
    """
    CREATE TABLE day_keys (
        day DATE PRIMARY KEY,
        created_at TIMESTAMP NOT NULL,
        closed_at TIMESTAMP,
        late_lines BIGINT NOT NULL DEFAULT 0
    )
    """,
)


def sessionise_sql(where: str = "r.is_pageview", gap: int = SESSION_GAP_SECONDS) -> str:
    """SQL: one row per session of the requests `r` (joined with user agents `u`) matching
    `where`, in the columns of the `sessions` table.

    A session is one visitor's run of requests with no gap over `gap` seconds. One sort
    (visitor, time, then source and line, so that tied timestamps always give the same
    answer) finds each session's first and last request; a second pass over those rows
    only pairs them up. Only the first row carries the source, country and device.
    """
    payload = (
        "r.host, r.path, r.source_kind, r.source_name, r.referrer_host, r.utm_source, "
        "r.utm_medium, r.utm_campaign, r.country, u.device"
    )
    return f"""
        SELECT visitor_id, host, start, finish, pageviews, entry, exit, source_kind,
               source_name, referrer_host, utm_source, utm_medium, utm_campaign, country, device
        FROM (
            SELECT visitor_id, host, ts AS start,
                   CASE WHEN last THEN ts ELSE lead(ts) OVER w2 END AS finish,
                   (CASE WHEN last THEN rn ELSE lead(rn) OVER w2 END - rn + 1)::INTEGER
                       AS pageviews,
                   path AS entry, CASE WHEN last THEN path ELSE lead(path) OVER w2 END AS exit,
                   new, source_kind, source_name, referrer_host, utm_source, utm_medium,
                   utm_campaign, country, device
            FROM (
                SELECT r.visitor_id, r.ts, {payload}, row_number() OVER w AS rn,
                       coalesce(date_diff('second', lag(r.ts) OVER w, r.ts) > {gap}, TRUE)
                           AS new,
                       coalesce(date_diff('second', r.ts, lead(r.ts) OVER w) > {gap}, TRUE)
                           AS last
                FROM requests r LEFT JOIN user_agents u ON r.ua_id = u.id
                WHERE {where}
                WINDOW w AS (PARTITION BY r.visitor_id ORDER BY r.ts, r.source_id, r.line_no)
            )
            WHERE new OR last
            WINDOW w2 AS (PARTITION BY visitor_id ORDER BY rn)
        )
        WHERE new
    """


# Sessions, so that reports read ~1 row per session instead of sorting every pageview.
# Each import run makes again those of the time window it touched (remake_dirty_sessions).
_V2 = (
    """
    CREATE TABLE sessions (
        visitor_id BIGINT NOT NULL,
        host VARCHAR,                   -- a visitor id is per host: all its requests share it
        start TIMESTAMP NOT NULL,       -- first pageview (UTC)
        finish TIMESTAMP NOT NULL,      -- last pageview
        pageviews INTEGER NOT NULL,
        entry VARCHAR,
        exit VARCHAR,
        source_kind VARCHAR,            -- from the first pageview, as are the columns below
        source_name VARCHAR,
        referrer_host VARCHAR,
        utm_source VARCHAR,
        utm_medium VARCHAR,
        utm_campaign VARCHAR,
        country VARCHAR,
        device VARCHAR
    )
    """,
    lambda db: remake_all_sessions(db),
)


def _visitor_ids_to_32_bits(db: Any) -> None:
    """Cut stored 64-bit visitor ids to their first 32 bits, which is what the import
    computes now: a visitor keeps their id across the upgrade."""
    (kind,) = db.execute(
        "SELECT data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND table_name = 'requests' AND column_name = 'visitor_id'"
    ).fetchall()[0]
    cut = "(visitor_id >> 32)::INTEGER" if kind == "BIGINT" else "visitor_id::INTEGER"
    for table in ("requests", "sessions"):
        db.execute(f"ALTER TABLE {table} ALTER visitor_id SET DATA TYPE INTEGER USING {cut}")


# Visitor ids cut to 32 bits: most of the stored bytes of a request were its id, and
# 32 bits still tell a day's visitors apart (see privacy.visitor_id).
_V3 = (_visitor_ids_to_32_bits,)

# Times in whole seconds, as nginx's $time_local has them (the import drops $msec's
# milliseconds): a row group's times then take half the bits (1M requests: the store
# 25.2 -> 20.5 MB). Truncated, never rounded into the next second (or day).
_V4 = tuple(
    f"ALTER TABLE {table} ALTER {column} SET DATA TYPE TIMESTAMP_S "
    f"USING date_trunc('second', {column})"
    for table, column in (("requests", "ts"), ("sessions", "start"), ("sessions", "finish"))
)


def _mask_stored_addresses(db: Any) -> None:
    """Mask the addresses older imports stored inside text (a proxy probe's
    `http://ADDR:port/`, a bot's `+http://ADDR`): imports now mask them before storing.
    User agents that become the same text are merged into one."""
    from ..privacy import mask_ips

    hint = "({c} LIKE '%.%.%.%' OR {c} LIKE '%:%:%')"
    text = {
        "requests": ("path", "query", "referrer", "referrer_host", "host"),
        "sessions": ("host", "entry", "exit", "referrer_host"),
    }
    for table, cols in text.items():
        for c in cols:
            found = db.execute(f"SELECT DISTINCT {c} FROM {table} WHERE {hint.format(c=c)}")
            changed = [(v, mask_ips(v)) for (v,) in found.fetchall()]
            changed = [(raw, clean) for raw, clean in changed if raw != clean]
            if changed:
                db.execute(
                    f"UPDATE {table} SET {c} = m.clean FROM (SELECT unnest($1::VARCHAR[]) AS raw, "
                    f"unnest($2::VARCHAR[]) AS clean) m WHERE {table}.{c} = m.raw",
                    [[r for r, _ in changed], [c2 for _, c2 in changed]],
                )
    agents = db.execute(f"SELECT id, ua FROM user_agents WHERE {hint.format(c='ua')}").fetchall()
    masked = {i: mask_ips(ua) for i, ua in agents if mask_ips(ua) != ua}
    if not masked:
        return
    existing = dict(
        db.execute(
            "SELECT ua, id FROM user_agents WHERE ua IN (SELECT unnest($1::VARCHAR[]))",
            [sorted(set(masked.values()))],
        ).fetchall()
    )
    keep: dict[str, int] = {}  # masked text -> the id that keeps it
    for i in sorted(masked):
        keep.setdefault(masked[i], existing.get(masked[i], i))
    moved = {i: keep[t] for i, t in masked.items() if keep[t] != i}
    if moved:
        db.execute(
            "UPDATE requests SET ua_id = m.new FROM (SELECT unnest($1::INTEGER[]) AS old, "
            "unnest($2::INTEGER[]) AS new) m WHERE requests.ua_id = m.old",
            [list(moved), list(moved.values())],
        )
        db.execute(
            "DELETE FROM user_agents WHERE id IN (SELECT unnest($1::INTEGER[]))", [list(moved)]
        )
    for t, i in keep.items():
        if i in masked:
            db.execute("UPDATE user_agents SET ua = ? WHERE id = ?", [t, i])


# User agents without the indexes of their PRIMARY KEY and UNIQUE constraints: with a
# million distinct ones (an attacker rotating them) the indexes took more memory than the
# whole import may (and 9/10 of the file). The import keeps ids and texts unique itself.
_UA_WITHOUT_INDEXES = (
    "CREATE TABLE user_agents_v5 AS SELECT * FROM user_agents ORDER BY id",
    "DROP TABLE user_agents",
    "ALTER TABLE user_agents_v5 RENAME TO user_agents",
)

# No address inside stored text (issue 15): what older imports stored is masked too.
_V5 = (*_UA_WITHOUT_INDEXES, _mask_stored_addresses)

#: version -> statements bringing the previous version to it.
MIGRATIONS: dict[int, tuple[str | Callable[[Any], None], ...]] = {
    1: _V1,
    2: _V2,
    3: _V3,
    4: _V4,
    5: _V5,
}

#: Columns of `requests` written by the import, in insert order.
REQUEST_COLUMNS = (
    "ts",
    "visitor_id",
    "host",
    "method",
    "path",
    "query",
    "protocol",
    "status",
    "bytes",
    "referrer",
    "ua_id",
    "source_id",
    "line_no",
)

#: Columns of `requests` that the import's enrichment fills.
ENRICHED_COLUMNS = (
    "country",
    "city",
    "is_bot",
    "is_pageview",
    "referrer_host",
    "source_kind",
    "source_name",
    "utm_source",
    "utm_medium",
    "utm_campaign",
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
) -> None:
    """Insert the sessions of the requests `r` matching `where` (those passing `keep`).

    A session never spans two visitors, so visitors are split into buckets of about
    SESSION_CHUNK_PAGEVIEWS pageviews, one statement each: the sort that finds sessions
    then needs memory for one bucket, not for the whole window.
    """
    (pageviews,) = db.execute(
        f"SELECT count(*) FROM requests r WHERE {where}", list(params)
    ).fetchall()[0]
    buckets = max(1, -(-pageviews // SESSION_CHUNK_PAGEVIEWS))
    for i in range(buckets):
        part = f"({where}) AND hash(r.visitor_id) % {buckets} = {i}" if buckets > 1 else where
        db.execute(
            f"INSERT INTO sessions SELECT * FROM ({sessionise_sql(part)}) WHERE {keep} "
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
#: so that the remake of a long history grows with its length, not with its square. (On
#: 5M requests, a bucket's scan of the whole window took 0.06 s and its sort 0.1 s: 7-day
#: slices, sorting their margins again, were slower there, 5.6 s against 4.1 s; 28-day
#: ones 4.3 s.)
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
            _insert_sessions_sliced(db, *near)
        db.execute("DELETE FROM meta WHERE key = 'sessions_dirty'")


def _insert_sessions_sliced(db: Any, first: datetime, last: datetime) -> None:
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
        )
        start = end


def remake_all_sessions(db: Any) -> None:
    """Make every stored session again (within the caller's transaction), after the rules
    that classify requests changed."""
    db.execute("DELETE FROM sessions")
    (first, last) = db.execute("SELECT min(ts), max(ts) FROM requests").fetchall()[0]
    if first is not None:
        _insert_sessions_sliced(db, first, last)
    db.execute("DELETE FROM meta WHERE key = 'sessions_dirty'")

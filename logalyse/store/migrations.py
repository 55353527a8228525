"""How a store of an older schema version becomes the current one: migration N brings a
database from version N-1 to N, each in one transaction with the version bump, so a crash
leaves either version. A new store is made at the current version directly (`tables`).

The DDL here is history: what version 1 created. The shape of every table today is
declared once, in `tables.TABLES`; a test holds the two to the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .sessions import remake_all_sessions

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
    # Made by migration 7, which makes every session again (with its later columns).
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
# milliseconds): a row group's times then take half the bits, a fifth of the store.
# Truncated, never rounded into the next second (or day).
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

# No address inside stored text (issue 15): what older imports stored is masked too. A
# stream's JSON position is gone: its replays are matched to the rows it stored.
_V5 = (
    *_UA_WITHOUT_INDEXES,
    _mask_stored_addresses,
    "ALTER TABLE sources DROP COLUMN IF EXISTS position",
)

# Machines with a browser's user agent, told by behaviour (issue 18): why a request was
# marked a bot when its user agent did not say so.
# Do Not Track / Global Privacy Control: such a request is counted but has no visitor id.
_V6 = (
    "ALTER TABLE requests ADD COLUMN IF NOT EXISTS bot_reason VARCHAR",
    "ALTER TABLE requests ALTER COLUMN visitor_id DROP NOT NULL",
)

# Sessions carry their user agent, and whether each is its visitor's first of the (UTC)
# day (of its source, referrer...): reports count daily visitors by country, browser, day
# and source from them without a distinct count over every pageview (issue 17).
_V7: tuple[str | Callable[[Any], None], ...] = (
    "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS ua_id INTEGER",
    *(
        f"ALTER TABLE sessions ADD COLUMN IF NOT EXISTS first_of_{first} BOOLEAN"
        for first in ("day", "kind", "referrer", "engine", "campaign")
    ),
    lambda db: remake_all_sessions(db),
)

#: version -> statements bringing the previous version to it.
MIGRATIONS: dict[int, tuple[str | Callable[[Any], None], ...]] = {
    1: _V1,
    2: _V2,
    3: _V3,
    4: _V4,
    5: _V5,
    6: _V6,
    7: _V7,
}

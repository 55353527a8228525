"""The store's tables, each declared once, as they are at the current schema version: a
new store is made from these; an older one is brought here by `migrations`.

Inserts name their columns (`INSERT ... BY NAME`), so that no code depends on their order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 7


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB's, with any constraint: "VARCHAR NOT NULL"
    doc: str = ""


def _columns(*spec: tuple[str, str] | tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*c) for c in spec)


#: table -> its columns, in order, with what each holds. No raw address anywhere: a
#: visitor is a keyed hash under a day key that lives outside the database.
TABLES: dict[str, tuple[Column, ...]] = {
    "meta": _columns(
        ("key", "VARCHAR PRIMARY KEY", "schema_version, created_at, site_hosts, sessions_dirty"),
        ("value", "VARCHAR"),
    ),
    # One row per input: a log file (identified by its first bytes) or a named stream.
    "sources": _columns(
        ("id", "INTEGER PRIMARY KEY"),
        ("kind", "VARCHAR NOT NULL", "file or stream"),
        ("name", "VARCHAR NOT NULL", "path last read from, or the stream's name"),
        ("device", "UBIGINT"),
        ("inode", "UBIGINT"),
        ("fingerprint", "VARCHAR", "blake2b-128 of the first fp_len content bytes"),
        ("fp_len", "INTEGER"),
        ("compressed", "BOOLEAN NOT NULL DEFAULT FALSE"),
        ("size", "BIGINT", "file size (on disk) when last read"),
        ("complete", "BOOLEAN NOT NULL DEFAULT FALSE", "a .gz read to its end (trailer seen)"),
        ("byte_offset", "BIGINT NOT NULL DEFAULT 0", "content bytes imported"),
        ("lines", "BIGINT NOT NULL DEFAULT 0", "lines up to byte_offset; a stream: over all runs"),
        ("first_import", "TIMESTAMP"),
        ("last_import", "TIMESTAMP"),
    ),
    # No index: the import keeps ids and texts unique (an attacker rotating user agents
    # made the indexes weigh more than the whole import may).
    "user_agents": _columns(
        ("id", "INTEGER"),
        ("ua", "VARCHAR", "addresses inside masked"),
        ("browser", "VARCHAR"),
        ("browser_major", "VARCHAR"),
        ("os", "VARCHAR"),
        ("device", "VARCHAR", "desktop | mobile | tablet | bot | other"),
        ("is_bot", "BOOLEAN", "NULL until classified (logalyse enrich)"),
        ("bot_name", "VARCHAR"),
    ),
    "requests": _columns(
        ("ts", "TIMESTAMP_S NOT NULL", "UTC, whole seconds (cut, never rounded)"),
        (
            "visitor_id",
            "INTEGER",
            "HMAC-SHA256(day key; address, UA, host), 32 bits; NULL: Do Not Track / GPC",
        ),
        ("host", "VARCHAR"),
        ("method", "VARCHAR"),
        ("path", "VARCHAR"),
        ("query", "VARCHAR", "scrubbed: utm_* and allow-listed keys only"),
        ("protocol", "VARCHAR"),
        ("status", "SMALLINT"),
        ("bytes", "BIGINT"),
        ("referrer", "VARCHAR", "without query string or fragment"),
        ("ua_id", "INTEGER", "user_agents.id"),
        ("source_id", "INTEGER NOT NULL", "sources.id"),
        ("line_no", "BIGINT NOT NULL", "line in the source; (source_id, line_no) is unique"),
        ("country", "VARCHAR", "ISO 3166 code, looked up before hashing"),
        ("city", "VARCHAR"),
        ("is_bot", "BOOLEAN"),
        ("is_pageview", "BOOLEAN"),
        ("referrer_host", "VARCHAR"),
        ("source_kind", "VARCHAR", "direct|search|social|ai|campaign|website|internal|spam"),
        ("source_name", "VARCHAR"),
        ("utm_source", "VARCHAR"),
        ("utm_medium", "VARCHAR"),
        ("utm_campaign", "VARCHAR"),
        ("bot_reason", "VARCHAR", "why a browser's user agent is a bot: (behaviour: rate)..."),
    ),
    # Days that had a key: when it was made and when it was destroyed (the key is not here).
    "day_keys": _columns(
        ("day", "DATE PRIMARY KEY"),
        ("created_at", "TIMESTAMP NOT NULL"),
        ("closed_at", "TIMESTAMP", "key destroyed"),
        ("late_lines", "BIGINT NOT NULL DEFAULT 0", "lines that came after it closed"),
    ),
    # Sessions, so that reports read ~1 row per session instead of sorting every pageview.
    "sessions": _columns(
        ("visitor_id", "INTEGER NOT NULL"),
        ("host", "VARCHAR", "a visitor id is per host: all its requests share it"),
        ("start", "TIMESTAMP_S NOT NULL", "first pageview (UTC)"),
        ("finish", "TIMESTAMP_S NOT NULL", "last pageview"),
        ("pageviews", "INTEGER NOT NULL"),
        ("entry", "VARCHAR"),
        ("exit", "VARCHAR"),
        ("source_kind", "VARCHAR", "from the first pageview, as are the columns below"),
        ("source_name", "VARCHAR"),
        ("referrer_host", "VARCHAR"),
        ("utm_source", "VARCHAR"),
        ("utm_medium", "VARCHAR"),
        ("utm_campaign", "VARCHAR"),
        ("country", "VARCHAR"),
        ("device", "VARCHAR"),
        ("ua_id", "INTEGER", "the user agent (a visitor id hashes it: all its requests share it)"),
        (
            "first_of_day",
            "BOOLEAN",
            "the visitor's first session of its UTC day: counting these counts daily visitors",
        ),
        ("first_of_kind", "BOOLEAN", "... first of the day of its source kind"),
        ("first_of_referrer", "BOOLEAN", "... from its referrer host"),
        ("first_of_engine", "BOOLEAN", "... from its source name (a search engine...)"),
        ("first_of_campaign", "BOOLEAN", "... from its campaign (utm_*)"),
    ),
}


def create_sql(table: str) -> str:
    """The CREATE TABLE statement of `table` as declared.

    Example:
        >>> create_sql("meta")
        'CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)'
    """
    return f"CREATE TABLE {table} (" + ", ".join(f"{c.name} {c.type}" for c in TABLES[table]) + ")"


def create_tables(db: Any) -> None:
    """Make every table of a new store (in the caller's transaction)."""
    for table in TABLES:
        db.execute(create_sql(table))


def site_hosts(db: Any) -> list[str]:
    """The site's own hosts, as imports found them or were told (`meta.site_hosts`): a
    referral from one of them is internal. `db` is a connection with the store attached."""
    rows = db.execute("SELECT value FROM db.meta WHERE key = 'site_hosts'").fetchall()
    return [h for r in rows for h in str(r[0]).split(",") if h]

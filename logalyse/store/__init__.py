"""The DuckDB store: schema, migrations, locks and the connection."""

from __future__ import annotations

from .columns import columns_sql
from .db import DEFAULT_LOCK_TIMEOUT, Store, default_db_path, open_private
from .schema import (
    DAY_KEY_SPAN,
    ENRICHED_COLUMNS,
    REQUEST_COLUMNS,
    SCHEMA_VERSION,
    SESSION_GAP_SECONDS,
    dirty_window,
    mark_sessions_dirty,
    remake_all_sessions,
    remake_dirty_sessions,
    sessionise_sql,
)
from .tx import transaction

__all__ = [
    "DAY_KEY_SPAN",
    "DEFAULT_LOCK_TIMEOUT",
    "ENRICHED_COLUMNS",
    "REQUEST_COLUMNS",
    "SCHEMA_VERSION",
    "SESSION_GAP_SECONDS",
    "Store",
    "columns_sql",
    "default_db_path",
    "dirty_window",
    "mark_sessions_dirty",
    "open_private",
    "remake_all_sessions",
    "remake_dirty_sessions",
    "sessionise_sql",
    "transaction",
]

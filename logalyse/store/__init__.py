"""The DuckDB store: its tables (`tables`), their history (`migrations`), the sessions
kept from the requests (`sessions`), locks and the connection (`db`)."""

from __future__ import annotations

from .columns import columns_sql
from .db import DEFAULT_LOCK_TIMEOUT, Store, default_db_path, open_private
from .sessions import (
    DAY_KEY_SPAN,
    SESSION_GAP_SECONDS,
    dirty_window,
    mark_sessions_dirty,
    remake_all_sessions,
    remake_dirty_sessions,
    sessionise_sql,
)
from .tables import SCHEMA_VERSION, TABLES, site_hosts
from .tx import transaction

__all__ = [
    "DAY_KEY_SPAN",
    "DEFAULT_LOCK_TIMEOUT",
    "SCHEMA_VERSION",
    "SESSION_GAP_SECONDS",
    "TABLES",
    "Store",
    "columns_sql",
    "default_db_path",
    "dirty_window",
    "mark_sessions_dirty",
    "open_private",
    "remake_all_sessions",
    "remake_dirty_sessions",
    "sessionise_sql",
    "site_hosts",
    "transaction",
]

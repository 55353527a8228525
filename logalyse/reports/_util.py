"""Helpers shared by the report modules: run a scoped query, plain-language notes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import duckdb

from ..scope import Scope
from ..store import Store, dirty_window, site_hosts

T = TypeVar("T")

#: DuckDB's memory for a report's queries. Under it DuckDB evicts the blocks of the file it
#: has read instead of keeping them (up to the store's 1 GB), so a report over a big store
#: stays small; a query that needs more makes the report run again without it.
REPORT_MEMORY_LIMIT = "40MB"


def frugally(store: Store, run: Callable[[], T]) -> T:
    """`run()` (a report's queries) under REPORT_MEMORY_LIMIT, again without it if one of
    them needs more (`Store.under_memory_limit`)."""
    return store.under_memory_limit(REPORT_MEMORY_LIMIT, run)


def settled(db: duckdb.DuckDBPyConnection, scope: Scope) -> Scope:
    """`scope` as the attached store has it: whether its stored sessions may lag (an
    import is running, or one was killed: sessions are then made from the requests), and
    whether --host is the site's own (a log without $host: its requests are the site's)."""
    scope = replace(scope, sessions_stale=dirty_window(db) is not None)
    if scope.host and scope.params["host"] in site_hosts(db):
        scope = replace(scope, host_is_site=True)
    return scope


def rows(store: Store, scope: Scope, sql: str) -> list[tuple[object, ...]]:
    """Run `sql`, whose conditions `scope` wrote, with those of its named parameters it
    names (none, when it reads a table made for the scope: `counting.counted`)."""
    with store.attached() as con:
        return con.execute(sql, scope.params_for(sql)).fetchall()


def empty_message(what: str, scope: Scope) -> str:
    where = f" for host {scope.host}" if scope.host else ""
    path = f" under {scope.path}" if scope.path else ""
    return f"No {what} in {scope.label}{where}{path}."


def bots_note(scope: Scope) -> str:
    return "bots included" if scope.include_bots else "humans only (--include-bots to add bots)"

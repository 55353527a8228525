"""Helpers shared by the report modules: run a scoped query, plain-language notes."""

from __future__ import annotations

from ..scope import Scope
from ..store import Store


def rows(store: Store, scope: Scope, sql: str) -> list[tuple[object, ...]]:
    """Run `sql`, whose conditions `scope` wrote, with its named parameters."""
    with store.attached() as con:
        return con.execute(sql, scope.params).fetchall()


def empty_message(what: str, scope: Scope) -> str:
    where = f" for host {scope.host}" if scope.host else ""
    path = f" under {scope.path}" if scope.path else ""
    return f"No {what} in {scope.label}{where}{path}."


def bots_note(scope: Scope) -> str:
    return "bots included" if scope.include_bots else "humans only (--include-bots to add bots)"

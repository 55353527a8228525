"""SQL literals, for the few places where a value cannot be a bound parameter (a pattern
compiled into a parse query, a time zone inside an expression reused by many queries).

Everything else reaches SQL as a parameter; these are the only quoting rules.
"""

from __future__ import annotations

from collections.abc import Iterable


def sql_literal(text: str) -> str:
    """Quote text as a SQL string literal.

    Example:
        >>> sql_literal("it's")
        "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


def sql_list(items: Iterable[str]) -> str:
    """Quote texts as the inside of a SQL `IN (...)` list (NULL when there are none).

    Example:
        >>> sql_list(["a", "b'c"])
        "'a', 'b''c'"
    """
    return ", ".join(sql_literal(i) for i in items) or "NULL"

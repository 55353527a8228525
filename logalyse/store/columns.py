"""Python values into a query, as a relation of columns, without an Arrow dependency."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def columns_sql(alias: str, /, **columns: tuple[str, Sequence[Any]]) -> tuple[str, dict[str, Any]]:
    """SQL for a relation `alias` of the given columns (`col=(type, values)`), all the same
    length, and the named parameters that carry them (one list each, `$<alias>_<col>`).

    Example:
        >>> import duckdb
        >>> sql, params = columns_sql("t", id=("INTEGER", [1, 2]), v=("VARCHAR", ["a", None]))
        >>> duckdb.connect().execute(f"SELECT * FROM {sql}", params).fetchall()
        [(1, 'a'), (2, None)]
    """
    lengths = {len(values) for _, values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of {alias} differ in length: {sorted(lengths)}")
    select = ", ".join(f"unnest(${alias}_{col}::{t}[]) AS {col}" for col, (t, _) in columns.items())
    params = {f"{alias}_{col}": list(values) for col, (_, values) in columns.items()}
    return f"(SELECT {select}) AS {alias}", params

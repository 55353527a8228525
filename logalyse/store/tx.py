"""One transaction on a DuckDB connection: committed at the end of the block, rolled back
if anything (an error, Ctrl-C) leaves it early."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def transaction(con: Any) -> Iterator[Any]:
    """`with transaction(con):` BEGIN ... COMMIT, or ROLLBACK and re-raise.

    Example:
        >>> import duckdb
        >>> con = duckdb.connect()
        >>> with transaction(con):
        ...     _ = con.execute("CREATE TABLE t AS SELECT 1 AS x")
        >>> con.execute("SELECT x FROM t").fetchall()
        [(1,)]
    """
    con.execute("BEGIN")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")

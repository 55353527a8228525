"""Pageviews as the visitor-counting reports read them, and the one pass that lets several
of them share the work (the dashboard's).

Counting distinct visitors is what costs in a report: a hash of every visitor id in the
period, for each table. The overview, the time series, countries, browsers, OS and devices
all count the same pageviews, so the dashboard groups them once per visitor (with their
user agent, country and local day or hour) into a temporary table about a third of their
size, and each of those reports counts over it. Both sources have the same columns, and
the reports use `count(DISTINCT visitor_id)` and `sum(n)` over either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import duckdb

from ..scope import Scope

Unit = Literal["day", "hour"]


def pageviews(scope: Scope, unit: Unit = "day") -> str:
    """SQL (parenthesised; parameters: `scope.params`): the pageviews in scope, one row
    each, with the columns visitor_id, ua_id, country, bucket (the local day or hour they
    fall in) and n = 1.

    Example:
        >>> pageviews(Scope(sessions_stale=False)).startswith("(SELECT r.visitor_id")
        True
    """
    local = scope.local("r.ts")
    bucket = f"{local}::DATE" if unit == "day" else f"date_trunc('hour', {local})"
    return (
        f"(SELECT r.visitor_id, r.ua_id, r.country, {bucket} AS bucket, 1 AS n "
        f"FROM requests r WHERE {scope.where('r', pages=True)})"
    )


@dataclass(frozen=True)
class Counted:
    """The temporary tables `counted` made: `pageviews` stands where `pageviews(scope)`
    would (one row per visitor, user agent, country and bucket; n: their pageviews);
    `agents` holds, per user agent id, its visitors (v) and pageviews (n)."""

    pageviews: str
    agents: str


@contextmanager
def counted(con: duckdb.DuckDBPyConnection, scope: Scope, unit: Unit = "day") -> Iterator[Counted]:
    """The pageviews in scope grouped once, for the block (see `Counted`)."""
    tables = Counted("counted_pageviews", "counted_agents")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {tables.pageviews} AS "
        "SELECT visitor_id, ua_id, country, bucket, count(*)::INTEGER AS n "
        f"FROM {pageviews(scope, unit)} GROUP BY ALL",
        scope.params,
    )
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {tables.agents} AS "
            f"SELECT ua_id, {AGENT_COUNTS} FROM {tables.pageviews} GROUP BY ua_id"
        )
        yield tables
    finally:
        con.execute(f"DROP TABLE IF EXISTS {tables.pageviews}")
        con.execute(f"DROP TABLE IF EXISTS {tables.agents}")


#: Per user agent: distinct visitors (v) and pageviews (n), over `pageviews` or its table.
AGENT_COUNTS = "count(DISTINCT visitor_id) AS v, sum(n) AS n"

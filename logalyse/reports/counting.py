"""Visitors and pageviews, for the reports that count them: the overview, the dashboard's
time series, countries, browsers, OS and devices.

Counting distinct visitors is what costs in a report: a hash of every visitor id in the
period, for each table. `Counted` names where each table's numbers are read from:

- the stored sessions, where they answer (UTC days, no path, humans, the stored gap, no
  import under way): each visitor's first session of its day is marked (`first_of_day`),
  so daily visitors are a count of rows, no distinct needed; pageviews are counted from
  the requests, which hold those of Do Not Track requests too (`counts_for`, and for the
  dashboard one grouping-sets pass into a small table, `counted`);
- else the pageviews themselves (`from_requests`), which the dashboard groups once per
  visitor, user agent, country and day into a temporary table about a third of their
  size, each table counting over it (`counted`).

Every way gives the same numbers: visitors are distinct (day, visitor id) pairs, the
daily visitors summed over the days, as the overview says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Literal

import duckdb

from ..scope import Scope, sessions_from, stored

Unit = Literal["day", "hour"]


@dataclass(frozen=True)
class Counted:
    """SQL relations (parenthesised queries or tables; parameters: those of the scope they
    name) with the visitors and pageviews in a scope:

    - `totals`: one row (visitors, pageviews);
    - `series`: (bucket, visitors, pageviews) per local day or hour;
    - `countries`: (value, visitors, pageviews) per country, NULL for unknown;
    - `agents`: (ua_id, v, n), visitors and pageviews per user agent id.
    """

    totals: str
    series: str
    countries: str
    agents: str


def _pageviews(scope: Scope, unit: Unit) -> str:
    """The pageviews in scope, one row each: visitor_id, ua_id, country, day (local) and
    bucket (the day, or the hour)."""
    day = f"{scope.local('r.ts')}::DATE"
    bucket = day if unit == "day" else f"date_trunc('hour', {scope.local('r.ts')})"
    return (
        f"(SELECT r.visitor_id, r.ua_id, r.country, {day} AS day, {bucket} AS bucket "
        f"FROM requests r WHERE {scope.where('r', pages=True)})"
    )


def day_visitors(day: str, visitor: str = "visitor_id") -> str:
    """SQL aggregate: visitors over several days. A visitor id is a day's, so: distinct
    (day, id) pairs, the daily visitors summed over the days (two people of two days
    with the same id are two); `day` a DATE. The pair is packed in one BIGINT: a lighter
    hash than a pair."""
    return f"count(DISTINCT ({day} - DATE '1970-01-01')::BIGINT * 4294967296 + {visitor})"


def session_visitors(scope: Scope, first: str) -> str:
    """SQL aggregate over the sessions of `scope` a report groups together: their daily
    visitors summed over the days. In UTC, a count of the sessions marked `first` (the
    first of their visitor's day among those sharing what the report groups by:
    `store.sessions.FIRSTS`); in another zone, whose days are not the marks', distinct
    (local day, visitor) pairs."""
    if scope.tz == "UTC":
        return f"count(*) FILTER ({first})"
    return day_visitors(f"{scope.local('start')}::DATE")


VISITORS = day_visitors("day")


def _over(rows: str, n: str) -> Counted:
    """The relations over `rows` (pageviews with visitor_id, ua_id, country, day and
    bucket), `n` the SQL of their number of pageviews."""
    return Counted(
        totals=f"(SELECT {VISITORS} AS visitors, coalesce({n}, 0) AS pageviews FROM {rows})",
        series=(
            f"(SELECT bucket, count(DISTINCT visitor_id) AS visitors, {n} AS pageviews "
            f"FROM {rows} GROUP BY 1)"
        ),
        # Grouped on the column itself: a lighter hash than on an expression of it.
        countries=(
            f"(SELECT country AS value, {VISITORS} AS visitors, {n} AS pageviews "
            f"FROM {rows} GROUP BY 1)"
        ),
        agents=f"(SELECT ua_id, {VISITORS} AS v, {n} AS n FROM {rows} GROUP BY 1)",
    )


def from_requests(scope: Scope, unit: Unit = "day") -> Counted:
    """Counted straight from the pageviews in scope (what a report alone reads).

    Example:
        >>> from_requests(Scope(sessions_stale=False)).totals.startswith("(SELECT count(")
        True
    """
    return _over(_pageviews(scope, unit), "count(*)")


def counts_for(scope: Scope) -> Counted:
    """Where a report alone reads visitors and pageviews in `scope`: the stored sessions'
    daily firsts and the requests' pageviews, grouped by what each table needs, when they
    answer (`_answers`); else the pageviews (`from_requests`).

    Example:
        >>> "first_of_day" in counts_for(Scope(sessions_stale=False)).totals
        True
        >>> counts_for(Scope(tz="Europe/Paris", sessions_stale=False)) == from_requests(
        ...     Scope(tz="Europe/Paris", sessions_stale=False))
        True
    """
    if not _answers(scope):
        return from_requests(scope)
    return _from_daily(lambda per: f"({_daily_sql(scope, (per,))})")


def _answers(scope: Scope) -> bool:
    """Whether the stored sessions, whose first of each visitor's UTC day is marked, can
    count the visitors in `scope`: not when they are made on the fly (a path, bots,
    another gap, an import under way), nor for local days that are not UTC's."""
    return stored(scope) and scope.tz == "UTC"


#: What the daily counts are grouped by (`per`): one grouping set each.
PER = ("day", "country", "ua_id", "all")


def _daily_sql(scope: Scope, per: Sequence[str] = PER) -> str:
    """SQL of the daily counts in `scope`, from the stored sessions' daily firsts and from
    the requests, which hold every pageview (those of Do Not Track requests too): per
    `side` (s: visitors, p: pageviews), one grouping set per name of `per` (`PER`)."""
    sets = ", ".join("()" if key == "all" else f"({key})" for key in per)
    if len(per) == 1:  # one grouping: grouping() and the other columns have no place
        named = f"'{per[0]}'"
        keys = ", ".join(k if k == per[0] else f"NULL AS {k}" for k in ("day", "country", "ua_id"))
    else:
        named = (
            "CASE grouping(day, country, ua_id) WHEN 3 THEN 'day' WHEN 5 THEN 'country' "
            "WHEN 6 THEN 'ua_id' ELSE 'all' END"
        )
        keys = "day, country, ua_id"
    return f"""
        SELECT 's' AS side, {named} AS per, {keys}, count(*) AS n
        FROM (SELECT start::DATE AS day, country, ua_id FROM {sessions_from(scope)}
              WHERE first_of_day) GROUP BY GROUPING SETS ({sets})
        UNION ALL
        SELECT 'p', {named}, {keys}, count(*)
        FROM (SELECT ts::DATE AS day, country, ua_id FROM requests r
              WHERE {scope.where("r", pages=True)}) GROUP BY GROUPING SETS ({sets})
    """


def _from_daily(source: Callable[[str], str]) -> Counted:
    """The relations over daily counts (`_daily_sql`); `source(per)` names those grouped
    per `per`: one table of them all, or a query of that grouping alone."""

    def by(key: str, name: str, v: str, n: str) -> str:
        sides = (
            f"coalesce(sum(n) FILTER (side = 's'), 0) AS {v}, "
            f"coalesce(sum(n) FILTER (side = 'p'), 0) AS {n}"
        )
        if key == "all":
            return f"(SELECT {sides} FROM {source(key)} WHERE per = 'all')"
        return (
            f"(SELECT {key} AS {name}, {sides} FROM {source(key)} WHERE per = '{key}' GROUP BY 1)"
        )

    return Counted(
        totals=by("all", "", "visitors", "pageviews"),
        series=by("day", "bucket", "visitors", "pageviews"),
        countries=by("country", "value", "visitors", "pageviews"),
        agents=by("ua_id", "ua_id", "v", "n"),
    )


@contextmanager
def counted(con: duckdb.DuckDBPyConnection, scope: Scope, unit: Unit = "day") -> Iterator[Counted]:
    """Visitors and pageviews in scope for several tables at once (the dashboard's), for
    the block: from the sessions when they answer (`_daily_sql`, all its groupings in one
    pass into a small table), else from the pageviews grouped once per visitor, user
    agent, country, day and bucket into a temporary table. The user agents' counts, read
    three times, are kept in one."""
    made = ["counted_agents"]
    if unit == "day" and _answers(scope):
        made.append("counted_daily")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE counted_daily AS {_daily_sql(scope)}", scope.params
        )
        found = _from_daily(lambda per: "counted_daily")
    else:
        made.append("counted_pageviews")
        hour = ", bucket" if unit == "hour" else ""  # per day, the bucket is the day
        con.execute(
            "CREATE OR REPLACE TEMP TABLE counted_pageviews AS "
            f"SELECT visitor_id, ua_id, country, day{hour}, count(*)::INTEGER AS n "
            f"FROM {_pageviews(scope, unit)} GROUP BY ALL",
            scope.params,
        )
        rows = "counted_pageviews" if hour else "(SELECT *, day AS bucket FROM counted_pageviews)"
        found = _over(rows, "sum(n)::BIGINT")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE counted_agents AS SELECT * FROM {found.agents}",
            scope.params_for(found.agents),
        )
        yield replace(found, agents="counted_agents")
    finally:
        for table in made:
            con.execute(f"DROP TABLE IF EXISTS {table}")

"""The sessions report: per day, how long and how deep, where sessions start and end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from ..model import Column, Report
from ..scope import Scope, sessions_from, stored
from ..store import Store
from ._util import bots_note, empty_message

#: Duration buckets: (label, lower bound in seconds, upper bound exclusive).
DURATIONS = (
    ("0s (one pageview, or all in a second)", 0, 1),
    ("1-10s", 1, 10),
    ("10-30s", 10, 30),
    ("30s-1m", 30, 60),
    ("1-3m", 60, 180),
    ("3-10m", 180, 600),
    ("10-30m", 600, 1800),
    ("30m+", 1800, None),
)
DEPTHS = (("1", 1, 2), ("2", 2, 3), ("3", 3, 4), ("4", 4, 5), ("5-9", 5, 10), ("10+", 10, None))


def _buckets(column: str, buckets: tuple[tuple[str, int, int | None], ...]) -> str:
    whens = " ".join(
        f"WHEN {column} >= {lo}" + (f" AND {column} < {hi}" if hi else "") + f" THEN {i}"
        for i, (_, lo, hi) in enumerate(buckets)
    )
    return f"CASE {whens} END"


@contextmanager
def _source(store: Store, scope: Scope) -> Iterator[tuple[duckdb.DuckDBPyConnection, Query]]:
    """The scope's sessions, for the block: stored ones are read where they lie (each
    query reads only its columns); made from the requests, they are made once into a
    temporary table, with only what the queries here read."""
    with store.attached() as con:
        if stored(scope):
            yield con, Query(sessions_from(scope), scope.params)
            return
        con.execute(
            "CREATE OR REPLACE TEMP TABLE sess AS SELECT visitor_id, start, pageviews, "
            f"entry, exit, seconds, bounce FROM {sessions_from(scope)}",
            scope.params,
        )
        try:
            yield con, Query("sess", {})
        finally:
            con.execute("DROP TABLE IF EXISTS sess")


@dataclass(frozen=True)
class Query:
    """Where sessions are read from (SQL after FROM), and its parameters."""

    source: str
    params: dict[str, object]

    def run(self, con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
        return con.execute(sql.format(sessions=self.source), self.params).fetchall()


def sessions(store: Store, scope: Scope) -> list[Report]:
    """Sessions, bounce rate, mean and median duration and pages per session, per day;
    distributions of duration and depth; top entry and exit pages.

    Example:
        >>> import tempfile, pathlib
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     [r.name for r in sessions(s, Scope(sessions_stale=False))]
        ['sessions', 'sessions_per_day', 'durations', 'depth', 'entry', 'exit']
    """
    day = scope.local("start")
    with _source(store, scope) as (con, q):
        summary = q.run(
            con,
            "SELECT count(*), avg(bounce::INT), avg(seconds), median(seconds), "
            "avg(pageviews) FROM {sessions}",
        )
        per_day = q.run(
            con,
            f"SELECT {day}::DATE AS day, count(*), count(DISTINCT visitor_id), "
            "avg(bounce::INT), avg(seconds), median(seconds), avg(pageviews) "
            "FROM {sessions} GROUP BY 1 ORDER BY 1",
        )
        rest = _shape(con, q, scope)
    total = int(summary[0][0] or 0)
    empty = empty_message("sessions", scope)
    gap = int(scope.gap.total_seconds() // 60)
    notes = [
        f"a session: one visitor's pageviews with no gap over {gap} minutes; {bots_note(scope)}",
        "visitor ids change at midnight, so a visit across midnight counts as two sessions",
    ]
    return [
        Report(
            "sessions",
            f"Sessions, {scope.label}",
            [
                Column("sessions", "sessions", "int"),
                Column("bounce_rate", "bounce rate", "pct"),
                Column("mean_seconds", "mean duration", "seconds"),
                Column("median_seconds", "median duration", "seconds"),
                Column("pages_per_session", "pages/session", "float"),
            ],
            summary if total else [],
            notes,
            empty=empty,
        ),
        Report(
            "sessions_per_day",
            "Per day",
            [
                Column("day", "day", "date"),
                Column("sessions", "sessions", "int"),
                Column("visitors", "visitors", "int"),
                Column("bounce_rate", "bounce", "pct"),
                Column("mean_seconds", "mean", "seconds"),
                Column("median_seconds", "median", "seconds"),
                Column("pages_per_session", "pages/session", "float"),
                Column("bar", "", "bar", of="sessions"),
            ],
            [(*r, None) for r in per_day],
            empty=empty,
        ),
        *rest,
    ]


def shape(store: Store, scope: Scope) -> list[Report]:
    """The sessions report's durations, depth, entry and exit pages, without its per-day
    tables (what the dashboard shows of it).

    Example:
        >>> import tempfile, pathlib
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     [r.name for r in shape(s, Scope(sessions_stale=False))]
        ['durations', 'depth', 'entry', 'exit']
    """
    with _source(store, scope) as (con, q):
        return _shape(con, q, scope)


def _shape(con: duckdb.DuckDBPyConnection, q: Query, scope: Scope) -> list[Report]:
    durations = q.run(
        con,
        f"SELECT {_buckets('seconds', DURATIONS)} AS b, count(*) FROM {{sessions}} "
        "GROUP BY 1 ORDER BY 1",
    )
    depth = q.run(
        con,
        f"SELECT {_buckets('pageviews', DEPTHS)} AS b, count(*) FROM {{sessions}} "
        "GROUP BY 1 ORDER BY 1",
    )
    entries = q.run(
        con,
        "SELECT entry, count(*) AS n, avg(bounce::INT) FROM {sessions} GROUP BY 1 "
        f"ORDER BY n DESC, entry LIMIT {int(scope.limit)}",
    )
    exits = q.run(
        con,
        "SELECT exit, count(*) AS n FROM {sessions} GROUP BY 1 "
        f"ORDER BY n DESC, exit LIMIT {int(scope.limit)}",
    )
    # Every session has a duration (finish >= start): the buckets add up to all of them.
    total = sum(int(n) for _, n in durations)
    empty = empty_message("sessions", scope)

    def share(n: object) -> float:
        return int(n) / total if total else 0.0  # type: ignore[call-overload]

    count_cols = [Column("sessions", "sessions", "int"), Column("share", "share", "pct")]
    return [
        Report(
            "durations",
            "Duration",
            [
                Column("duration", "duration", "text"),
                *count_cols,
                Column("bar", "", "bar", of="sessions"),
            ],
            [(DURATIONS[b][0], n, share(n), None) for b, n in durations],
            empty=empty,
        ),
        Report(
            "depth",
            "Pageviews per session",
            [
                Column("pageviews", "pageviews", "text"),
                *count_cols,
                Column("bar", "", "bar", of="sessions"),
            ],
            [(DEPTHS[b][0], n, share(n), None) for b, n in depth],
            empty=empty,
        ),
        Report(
            "entry",
            "Entry pages",
            [
                Column("path", "entry page"),
                Column("sessions", "sessions", "int"),
                Column("bounce_rate", "bounce", "pct"),
            ],
            entries,
            empty=empty,
        ),
        Report(
            "exit",
            "Exit pages",
            [Column("path", "exit page"), Column("sessions", "sessions", "int")],
            exits,
            empty=empty,
        ),
    ]

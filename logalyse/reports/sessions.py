"""The sessions report: per day, how long and how deep, where sessions start and end."""

from __future__ import annotations

from ..model import Column, Report
from ..scope import Scope, sessions_from
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


def sessions(store: Store, scope: Scope) -> list[Report]:
    """Sessions, bounce rate, mean and median duration and pages per session, per day;
    distributions of duration and depth; top entry and exit pages.

    Example:
        >>> import tempfile, pathlib
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     [r.name for r in sessions(s, Scope(sessions_stale=False))]
        ['sessions', 'sessions_per_day', 'durations', 'depth', 'entry', 'exit']
    """
    sql = f"CREATE OR REPLACE TEMP TABLE sess AS {sessions_from(scope)}"
    day = scope.local("start")
    with store.attached() as con:
        con.execute(sql, scope.params)
        try:
            summary = con.execute(
                "SELECT count(*), avg(bounce::INT), avg(seconds), median(seconds), "
                "avg(pageviews) FROM sess"
            ).fetchall()
            per_day = con.execute(
                f"SELECT {day}::DATE AS day, count(*), count(DISTINCT visitor_id), "
                "avg(bounce::INT), avg(seconds), median(seconds), avg(pageviews) "
                "FROM sess GROUP BY 1 ORDER BY 1"
            ).fetchall()
            durations = con.execute(
                f"SELECT {_buckets('seconds', DURATIONS)} AS b, count(*) FROM sess "
                "GROUP BY 1 ORDER BY 1"
            ).fetchall()
            depth = con.execute(
                f"SELECT {_buckets('pageviews', DEPTHS)} AS b, count(*) FROM sess "
                "GROUP BY 1 ORDER BY 1"
            ).fetchall()
            entries = con.execute(
                "SELECT entry, count(*) AS n, avg(bounce::INT) FROM sess GROUP BY 1 "
                "ORDER BY n DESC, entry LIMIT ?",
                [scope.limit],
            ).fetchall()
            exits = con.execute(
                "SELECT exit, count(*) AS n FROM sess GROUP BY 1 ORDER BY n DESC, exit LIMIT ?",
                [scope.limit],
            ).fetchall()
        finally:
            con.execute("DROP TABLE IF EXISTS sess")
    total = int(summary[0][0] or 0)
    empty = empty_message("sessions", scope)
    gap = int(scope.gap.total_seconds() // 60)
    notes = [
        f"a session: one visitor's pageviews with no gap over {gap} minutes; {bots_note(scope)}",
        "visitor ids change at midnight, so a visit across midnight counts as two sessions",
    ]

    def share(n: object) -> float:
        return int(n) / total if total else 0.0  # type: ignore[call-overload]

    count_cols = [Column("sessions", "sessions", "int"), Column("share", "share", "pct")]
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

"""The overview: the day's (or period's) headline numbers, beside the previous period's."""

from __future__ import annotations

from ..model import Column, Report
from ..scope import Scope, sessions_from
from ..store import Store
from ._util import bots_note, rows
from .counting import Counted, counts_for

KEYS = (
    ("requests", "Requests (hits, bots included)", "int"),
    ("pageviews", "Pageviews", "int"),
    ("visitors", "Visitors (daily ids, summed over days)", "int"),
    ("sessions", "Sessions", "int"),
    ("bounce_rate", "Bounce rate", "pct"),
    ("avg_session_seconds", "Average session", "seconds"),
    ("bot_requests", "Bot requests", "int"),
)


def totals(store: Store, scope: Scope, counts: Counted | None = None) -> dict[str, object]:
    """The overview's numbers for one scope, keyed as in the JSON output (`counts`: the
    scope's pageviews as `counting.counted` made them, if it has)."""
    sql = f"""
        SELECT h.requests, p.pageviews, p.visitors, s.sessions, s.bounce_rate,
               s.avg_seconds, h.bot_requests
        FROM (SELECT count(*) AS requests,
                     count(*) FILTER (coalesce(is_bot, FALSE)) AS bot_requests
              FROM requests r WHERE {scope.where("r", bots=True)}) h,
             (SELECT pageviews::BIGINT AS pageviews, visitors::BIGINT AS visitors
              FROM {(counts or counts_for(scope)).totals}) p,
             (SELECT count(*) AS sessions, avg(bounce::INT) AS bounce_rate,
                     avg(seconds) AS avg_seconds
              FROM {sessions_from(scope)}) s
    """
    (row,) = rows(store, scope, sql)
    return dict(zip([k for k, _, _ in KEYS], row, strict=False))


def overview(store: Store, scope: Scope, counts: Counted | None = None) -> list[Report]:
    """Requests, pageviews, visitors, sessions, bounce rate, average session, bot requests
    (`counts`: the scope's pageviews as `counting.counted` made them, if the caller has).

    Example:
        >>> import tempfile, pathlib
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     overview(s, Scope(sessions_stale=False))[0].record["requests"]
        0
    """
    now = totals(store, scope, counts)
    prev_scope = scope.previous()
    before = totals(store, prev_scope) if prev_scope else None
    columns = [Column("metric", "", "text"), Column("value", scope.label, "mixed")]
    if before is not None:
        columns += [
            Column("previous", prev_scope.label if prev_scope else "", "mixed"),
            Column("change", "change", "change"),
        ]
    out = []
    for key, label, _ in KEYS:
        value = now[key]
        row: list[object] = [label, value]
        if before is not None:
            old = before[key]
            change = None
            if isinstance(value, (int, float)) and isinstance(old, (int, float)) and old:
                change = (value - old) / old
            row += [old, change]
        out.append(tuple(row))
    notes = [
        "visitors: distinct visitor ids per day, summed over the days (ids change at midnight)",
        f"pageviews, visitors and sessions: {bots_note(scope)}",
    ]
    if before is None:
        notes.append("add --since (e.g. --since 7d) to compare with the period before")
    record = dict(now)
    if before is not None:
        record["previous"] = before
    return [
        Report(
            "overview",
            f"Overview, {scope.label}",
            columns,
            out,
            notes,
            single=True,
            row_kinds=[kind for _, _, kind in KEYS],
            record=record,
        )
    ]

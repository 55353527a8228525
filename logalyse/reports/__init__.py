"""Reports: plain functions over the store that return `Report`s (rows, not text).

Each takes a `Store` and a `Scope` (period, host, path, bots, limit) and returns one or
more sections; `render` turns any of them into a table, JSON, CSV or TSV.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ..model import Report
from ..sessions import Scope
from ..store import Store, dirty_window
from .breakdowns import (
    bots,
    browsers,
    countries,
    devices,
    entry,
    exit_pages,
    hours,
    not_found,
    os_families,
    pages,
    status,
    visitors,
)
from .overview import overview
from .sources import campaigns, referrers, search
from .traffic import sessions

ReportFn = Callable[[Store, Scope], list[Report]]


def _fresh(fn: ReportFn) -> ReportFn:
    """Run a report knowing whether the stored sessions are up to date."""

    @functools.wraps(fn)
    def run(store: Store, scope: Scope) -> list[Report]:
        # Attached for the whole report: one open of the file, not one per query.
        with store.attached() as db:
            scope.sessions_stale = dirty_window(db) is not None
            return fn(store, scope)

    return run


#: Report name (as typed after `logalyse report`) -> its function; the CLI has the help.
REPORTS: dict[str, ReportFn] = {
    "overview": _fresh(overview),
    "sessions": _fresh(sessions),
    "referrers": _fresh(referrers),
    "campaigns": _fresh(campaigns),
    "search": _fresh(search),
    "pages": _fresh(pages),
    "entry": _fresh(entry),
    "exit": _fresh(exit_pages),
    "not-found": _fresh(not_found),
    "status": _fresh(status),
    "browsers": _fresh(browsers),
    "os": _fresh(os_families),
    "devices": _fresh(devices),
    "countries": _fresh(countries),
    "hours": _fresh(hours),
    "bots": _fresh(bots),
    "visitors": _fresh(visitors),
}

__all__ = ["REPORTS", "ReportFn", "Scope"]

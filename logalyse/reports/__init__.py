"""Reports: plain functions over the store that return `Report`s (rows, not text).

Each takes a `Store` and a `Scope` (period, host, path, bots, limit) and returns one or
more sections; `render` turns any of them into a table, JSON, CSV or TSV.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import Report
from ..sessions import Scope
from ..store import Store
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

#: Report name (as typed after `logalyse report`) -> its function; the CLI has the help.
REPORTS: dict[str, ReportFn] = {
    "overview": overview,
    "sessions": sessions,
    "referrers": referrers,
    "campaigns": campaigns,
    "search": search,
    "pages": pages,
    "entry": entry,
    "exit": exit_pages,
    "not-found": not_found,
    "status": status,
    "browsers": browsers,
    "os": os_families,
    "devices": devices,
    "countries": countries,
    "hours": hours,
    "bots": bots,
    "visitors": visitors,
}

__all__ = ["REPORTS", "ReportFn", "Scope"]

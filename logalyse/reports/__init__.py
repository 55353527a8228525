"""Reports: plain functions over the store that return `Report`s (rows, not text).

`report(store, name, ...)` is the entry point: it checks the options, asks the store
whether its sessions are up to date, and runs one of `REPORTS`. Each of those takes a
`Store` and a `Scope` and returns one or more sections; `render` turns any of them into
a table, JSON, CSV, TSV or HTML. `dashboard(store, scope_for(...))` gathers what the
dashboard page shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from ..enrich import DEFAULT_ASSET_EXTENSIONS, DEFAULT_NON_PAGES
from ..errors import ConfigError
from ..model import Report
from ..scope import DEFAULT_GAP, Scope, period
from ..store import Store
from ._util import frugally, settled
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
from .dashboard import dashboard
from .overview import overview
from .referrers import campaigns, referrers, search
from .sessions import sessions

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


def _day_words(value: str | date | None, option: str) -> str | None:
    """A day as `period` reads it: the user's words, or a `date`'s ISO form."""
    if isinstance(value, datetime):  # a date too, but its time would be dropped
        raise ConfigError(f"{option}: give a day (a date or YYYY-MM-DD), not a time: {value}")
    return value.isoformat() if isinstance(value, date) else value


def report(
    store: Store,
    name: str,
    *,
    since: str | date | None = None,
    until: str | date | None = None,
    tz: str = "UTC",
    host: str | None = None,
    path: str | None = None,
    include_bots: bool = False,
    limit: int = 20,
    gap: timedelta = DEFAULT_GAP,
    asset_extensions: Sequence[str] = DEFAULT_ASSET_EXTENSIONS,
    non_pages: Sequence[str] = DEFAULT_NON_PAGES,
) -> list[Report]:
    """Run the report `name` (a key of `REPORTS`: overview, sessions, referrers, pages...)
    and return its sections, as `logalyse report NAME` prints them.

    Args:
        since: First day, in `tz`: a `date`, YYYY-MM-DD, today, yesterday, 7d, 30d,
            month or year; None for the beginning.
        until: Last day, included (same words); None for now.
        tz: Time zone of days and hours.
        host: Only requests to this host (`www.` and case aside).
        path: Only paths matching this glob: `/blog/*`.
        include_bots: Count bots as visitors too.
        limit: Rows per table.
        gap: Idle time that ends a session (one minute at least).
        asset_extensions: Extensions that are not pages, for bots' pageviews with
            `include_bots` (humans' pageviews were decided by the import).
        non_pages: Paths that are never pages, likewise.

    Raises:
        ConfigError: an unknown report or a bad option; nothing was read.

    Example:
        >>> import tempfile, pathlib
        >>> from logalyse import Store, report
        >>> from logalyse.ingest import ingest  # `logalyse.ingest` is also its package
        >>> log = pathlib.Path(tempfile.mkdtemp()) / "access.log"
        >>> _ = log.write_text(
        ...     '203.0.113.9 - - [02/Nov/2026:10:00:00 +0000] "GET /blog/hello HTTP/1.1" 200 512 '
        ...     '"https://www.google.com/" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) '
        ...     'Gecko/20100101 Firefox/128.0"\\n'
        ... )
        >>> with Store(log.with_name("logalyse.duckdb")) as store:
        ...     _ = ingest(store, [log])
        ...     (pages,) = report(store, "pages", since="2026-11-01", until="2026-11-07")
        >>> pages.columns[0].key, pages.rows
        ('path', [('/blog/hello', 1, 1)])
        >>> pages.records()
        [{'path': '/blog/hello', 'pageviews': 1, 'visitors': 1}]
    """
    fn = REPORTS.get(name)
    if fn is None:
        raise ConfigError(f"unknown report {name!r}: use one of {', '.join(REPORTS)}")
    scope = scope_for(
        since=since,
        until=until,
        tz=tz,
        host=host,
        path=path,
        include_bots=include_bots,
        limit=limit,
        gap=gap,
        asset_extensions=asset_extensions,
        non_pages=non_pages,
    )
    # Attached for the whole report: one open of the file, not one per query.
    with store.attached() as db:
        scope = settled(db, scope)
        return frugally(store, lambda: fn(store, scope))


def scope_for(
    *,
    since: str | date | None = None,
    until: str | date | None = None,
    tz: str = "UTC",
    host: str | None = None,
    path: str | None = None,
    include_bots: bool = False,
    limit: int = 20,
    gap: timedelta = DEFAULT_GAP,
    asset_extensions: Sequence[str] = DEFAULT_ASSET_EXTENSIONS,
    non_pages: Sequence[str] = DEFAULT_NON_PAGES,
) -> Scope:
    """The `Scope` of `report`'s filters (same arguments), for `dashboard` or a report
    function called directly. Whether the store's sessions lag is for the store to say:
    `sessions_stale` is False until a report asks it.

    Raises:
        ConfigError: a bad option.
    """
    start, end, label = period(_day_words(since, "since"), _day_words(until, "until"), tz)
    return Scope(
        since=start,
        until=end,
        host=host,
        path=path,
        include_bots=include_bots,
        tz=tz,
        limit=limit,
        gap=gap,
        label=label,
        sessions_stale=False,
        asset_extensions=tuple(asset_extensions),
        non_pages=tuple(non_pages),
    )


__all__ = ["REPORTS", "ReportFn", "Scope", "dashboard", "report", "scope_for"]

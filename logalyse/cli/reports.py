"""The commands that show what is stored: `report NAME` (one per report), `report
dashboard` (the HTML page) and `top`."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .app import (
    CONTEXT_SETTINGS,
    EXIT_CODES_HELP,
    F,
    _one_line,
    _open_store,
    _render,
    _stop_on_signals,
    cli,
    db_option,
    format_option,
    parse_duration,
    quiet_option,
    say,
)

if TYPE_CHECKING:
    from ..store import Store


@cli.command("top", epilog=EXIT_CODES_HELP)
@db_option
@click.option(
    "--minutes",
    type=click.IntRange(1, 1440),
    default=5,
    show_default=True,
    help="The window: this many minutes up to the newest stored request.",
)
@click.option("--every", default="2s", show_default=True, help="Refresh interval.")
@click.option(
    "--limit",
    type=click.IntRange(1, 1_000_000),
    default=8,
    show_default=True,
    help="Rows per table.",
)
@click.option("--once", is_flag=True, help="Print one view and exit (the default in a pipe).")
@format_option
def top_command(
    minutes: int,
    every: str,
    limit: int,
    once: bool,
    format_: str,
    as_json: bool,
) -> None:
    """A live view of the last minutes, refreshed in place: requests/s, visitors, top
    pages and referrers. Run it beside `logalyse tail`.

    \b
    Examples:
      logalyse top
      logalyse top --minutes 15 --once --json
    """
    from ..reports.live import live

    fmt = "json" if as_json else format_.lower()

    def view() -> list[Any]:
        with _open_store(read_only=True) as store:
            return live(store, minutes, limit)

    if once or fmt != "table" or not sys.stdout.isatty():
        _render(view(), fmt, False)
        return
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from ..render import render_table

    seconds = parse_duration(
        every, unit="s", option="--every", shortest=timedelta(seconds=0.1)
    ).total_seconds()
    console = Console(highlight=False)

    def frame() -> Text:
        buf = io.StringIO()
        render_table(view(), buf, color=True)
        return Text.from_ansi(buf.getvalue() + "Ctrl-C to quit")

    stop = _stop_on_signals()  # Ctrl-C is how one leaves top: not a failure
    with Live(frame(), console=console, auto_refresh=False, screen=False) as screen:
        while not stop.wait(seconds):
            screen.update(frame(), refresh=True)


# -- reports -------------------------------------------------------------------------------


def filter_options(fn: F) -> F:
    """Which requests a report (or the dashboard) reads."""
    options = [
        click.option(
            "--since",
            help="First day: YYYY-MM-DD, today, yesterday, 7d, 30d, month [default: all].",
        ),
        click.option("--until", help="Last day, included (same words as --since)."),
        click.option("--host", help="Only requests to this host (as logged by $host)."),
        click.option("--path", "path_glob", help="Only paths matching this glob: '/blog/*'."),
        click.option("--include-bots", is_flag=True, help="Count bots as visitors too."),
        click.option(
            "--tz",
            default="UTC",
            envvar="LOGALYSE_TZ",
            show_default=True,
            help="Time zone of days and hours.",
        ),
        click.option(
            "--gap",
            default="30m",
            show_default=True,
            envvar="LOGALYSE_GAP",
            help="Idle time that ends a session.",
        ),
        click.option(
            "--from",
            "from_",
            multiple=True,
            metavar="DIR_OR_GLOB",
            help="Read `logalyse export` directories (repeatable; e.g. one per server) "
            "instead of the database.",
        ),
        db_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _reading(params: dict[str, Any]) -> Store:
    """The store a report reads: the database, or the exports --from names merged."""
    if params.get("from_"):
        from ..exchange import open_exports

        return open_exports(params["from_"])
    return _open_store(read_only=True)


def limit_option(default: int) -> Callable[[F], F]:
    return click.option(
        "--limit",
        type=click.IntRange(0, 1_000_000),
        default=default,
        show_default=True,
        help="Rows per table; 0 for all of them.",
    )


def report_options(fn: F) -> F:
    """The filters and output options every report takes."""
    return filter_options(limit_option(20)(format_option(fn)))


def _filters(params: dict[str, Any]) -> dict[str, Any]:
    """The filter options as `reports.report` and `reports.scope_for` take them."""
    return {
        "since": params["since"],
        "until": params["until"],
        "tz": params["tz"],
        "host": params["host"],
        "path": params["path_glob"],
        "include_bots": params["include_bots"],
        "gap": parse_duration(params["gap"], option="--gap", shortest=timedelta(minutes=1)),
    }


@cli.group("report", context_settings=CONTEXT_SETTINGS)
def report_group() -> None:
    """Print a report: tables on a terminal, json/csv/tsv for pipes, html for mail;
    or write the dashboard page.

    \b
    Examples:
      logalyse report overview --since 7d
      logalyse report sessions --since month --tz Europe/Paris
      logalyse report referrers --format json | jq '.[0]'
      logalyse report pages --path '/blog/*' --format csv > pages.csv
      logalyse report dashboard --since 30d -o /var/www/stats/index.html
    """


def _run_report(name: str, params: dict[str, Any]) -> None:
    from ..reports import report

    filters = _filters(params)  # checked before the store is opened
    tables = REPORT_TABLES.get(name, ())
    table = params.get("table")
    fmt = "json" if params["as_json"] else params["format_"].lower()
    if table is not None and table not in tables:
        raise click.BadParameter(
            f"{table!r}: {name} has the tables {', '.join(tables)}", param_hint="--table"
        )
    if table is None and fmt in ("csv", "tsv") and len(tables) > 1:
        table = tables[0]  # one table per CSV: the main one unless told
    with _reading(params) as store:
        reports = report(store, name, limit=params["limit"], **filters)
    if table is not None:
        reports = [r for r in reports if r.name == table]
    _render(reports, params["format_"], params["as_json"])


def dashboard_page(
    store: Store, filters: dict[str, Any], *, limit: int, title: str | None = None
) -> str:
    """The dashboard of `store` for `filters` (see `_filters`), as one HTML page."""
    from ..render.html import render_dashboard
    from ..reports import dashboard, scope_for

    board = dashboard(store, scope_for(limit=limit, **filters), title=title)
    out = io.StringIO()
    render_dashboard(board, out)
    return out.getvalue()


def write_dashboard(
    store: Store, filters: dict[str, Any], output: Path | None, *, limit: int, title: str | None
) -> int:
    """Write the page to `output` (replaced atomically) or stdout; its size in bytes."""
    from ..render.html import write_atomically

    page = dashboard_page(store, filters, limit=limit, title=title)
    if output is None:
        sys.stdout.write(page)
    else:
        write_atomically(output, page)
    return len(page.encode())


@report_group.command("dashboard", epilog=EXIT_CODES_HELP)
@filter_options
@limit_option(10)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the page here, replacing it atomically [default: stdout].",
)
@click.option("--title", help="The page's title [default: the site's hosts].")
@quiet_option
def report_dashboard(
    output: Path | None, title: str | None, quiet: bool, limit: int, **params: Any
) -> None:
    """Write the dashboard: one self-contained HTML page (no script, nothing loaded from
    elsewhere) with visitors over time, sources, pages, countries, devices and sessions.

    \b
    Examples:
      logalyse report dashboard --since 30d -o /var/www/stats/index.html
      logalyse report dashboard --since yesterday --tz Europe/Paris > today.html
    """
    filters = _filters(params)
    with _reading(params) as store:
        size = write_dashboard(store, filters, output, limit=limit, title=title)
    if output is not None and not quiet:
        say(f"wrote {_one_line(str(output))} ({size / 1024:,.0f} KiB)")


def _add_report_command(name: str, help_text: str) -> None:
    def command(**params: Any) -> None:
        _run_report(name, params)

    tables = REPORT_TABLES.get(name, ())
    if len(tables) > 1:
        help_text += (
            f" Tables: {', '.join(tables)} (--table NAME shows one; csv and tsv show one, "
            f"{tables[0]} unless told)."
        )
        command = click.option(
            "--table",
            type=click.Choice(tables),
            help="Only this table (csv/tsv: one table per output).",
        )(command)
    command.__doc__ = help_text
    report_group.command(name, help=help_text, epilog=EXIT_CODES_HELP)(report_options(command))


def _add_report_commands() -> None:
    # The names and help live in reports.REPORTS; importing it here would load duckdb at
    # startup, so the list is repeated (tests check that the two agree).
    for name, help_text in REPORT_HELP.items():
        _add_report_command(name, help_text)


#: The tables of the reports that have several, main one first (tests check them).
REPORT_TABLES = {
    "sessions": ("sessions", "sessions_per_day", "durations", "depth", "entry", "exit"),
    "referrers": ("sources", "referrers"),
    "hours": ("hours", "weekdays"),
}

REPORT_HELP = {
    "overview": "Requests, pageviews, visitors, sessions, bounce rate, bots' share.",
    "sessions": "Sessions per day, durations, depth, entry and exit pages.",
    "referrers": "Sessions by source category and by referrer host.",
    "campaigns": "Sessions by utm_source / utm_medium / utm_campaign.",
    "search": "Sessions from search engines.",
    "pages": "Pageviews and visitors by path.",
    "entry": "Pages sessions start on, with their bounce rate.",
    "exit": "Pages sessions end on.",
    "not-found": "404s by path, humans and bots.",
    "status": "Requests by HTTP status.",
    "browsers": "Visitors by browser.",
    "os": "Visitors by operating system.",
    "devices": "Visitors by device type.",
    "countries": "Visitors by country.",
    "hours": "Sessions by hour of day and by weekday.",
    "bots": "Requests by bot.",
    "visitors": "Distinct visitors per day (ids are daily: see the note).",
}
_add_report_commands()

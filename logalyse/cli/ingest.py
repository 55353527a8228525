"""The commands that read logs: `import`, `tail`, and `enrich` (classify stored requests again)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from ..errors import ExitCode
from .app import (
    EXIT_CODES_HELP,
    CommandFailed,
    F,
    _one_line,
    _open_store,
    _plural,
    _progress,
    _stop_on_signals,
    _summary,
    cli,
    db_option,
    geoip_options,
    parse_duration,
    quiet_option,
    say,
    site_option,
)

if TYPE_CHECKING:
    from ..enrich.behaviour import Behaviour
    from ..ingest import ImportOptions
    from ..model import IngestStats
    from ..store import Store


def pageview_options(fn: F) -> F:
    fn = click.option(
        "--non-page",
        multiple=True,
        envvar="LOGALYSE_NON_PAGES",
        help="A path that is never a pageview, or a glob of them ('/image/*'), besides "
        "/robots.txt, /favicon.ico... (repeatable).",
    )(fn)
    return click.option(
        "--asset-ext",
        multiple=True,
        envvar="LOGALYSE_ASSET_EXT",
        help="An extension that is not a page, besides .css .js .png..., or a path glob "
        "('/image/*') (repeatable).",
    )(fn)


def behaviour_options(fn: F) -> F:
    """When a browser's user agent is a machine's (`enrich.behaviour`)."""
    fn = click.option(
        "--max-page-repeats",
        type=click.IntRange(1, 1_000_000),
        default=20,
        show_default=True,
        envvar="LOGALYSE_MAX_PAGE_REPEATS",
        help="A visitor that fetches one page more often than this in a day, and no image "
        "or style, is a machine.",
    )(fn)
    return click.option(
        "--max-hourly-pageviews",
        type=click.IntRange(1, 1_000_000),
        default=120,
        show_default=True,
        envvar="LOGALYSE_MAX_HOURLY_PAGEVIEWS",
        help="A visitor with more pageviews than this in one hour is a machine, whatever "
        "its user agent says.",
    )(fn)


def _behaviour(params: dict[str, Any]) -> Behaviour:
    from ..enrich.behaviour import Behaviour

    return Behaviour(
        hourly_pageviews=params["max_hourly_pageviews"], page_repeats=params["max_page_repeats"]
    )


def _pageview_rules(params: dict[str, Any]) -> dict[str, Any]:
    from ..enrich import DEFAULT_ASSET_EXTENSIONS, DEFAULT_NON_PAGES

    extra = tuple(e if e.startswith("/") else e.lower().lstrip(".") for e in params["asset_ext"])
    return {
        "asset_extensions": DEFAULT_ASSET_EXTENSIONS + extra,
        "non_pages": DEFAULT_NON_PAGES + tuple(params["non_page"]),
    }


lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(0, 86400),
    default=10.0,
    show_default=True,
    envvar="LOGALYSE_LOCK_TIMEOUT",
    help="Seconds to wait for a busy database (or another import).",
)


def ingest_options(fn: F) -> F:
    """The options of the commands that read logs: `import` and `tail`."""
    options = [
        db_option,
        click.option(
            "--log-format",
            "log_format",
            envvar="LOGALYSE_LOG_FORMAT",
            help="Preset (combined, common, vhost_combined, main, json) or an nginx log_format "
            "string as written in nginx.conf. Detected from the first lines when omitted.",
        ),
        # --format, as it was called before GoAccess's name was taken: everywhere else it
        # is the output format.
        click.option("--format", "format_alias", envvar="LOGALYSE_FORMAT", hidden=True),
        click.option("--service", help="Keep only this docker compose service's lines (stdin)."),
        click.option(
            "--source",
            "source_name",
            help="Checkpoint name for stdin [default: compose:SERVICE, or stdin].",
        ),
        click.option(
            "--rejects",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Append malformed lines here (source, line number, line with addresses masked).",
        ),
        click.option(
            "--tz",
            default="UTC",
            envvar="LOGALYSE_TZ",
            show_default=True,
            help="Time zone whose midnight ends a day (for the daily keys).",
        ),
        click.option(
            "--grace",
            default="2h",
            show_default=True,
            envvar="LOGALYSE_GRACE",
            help="How long after midnight a day's key is kept for late lines.",
        ),
        click.option(
            "--keep-query",
            multiple=True,
            envvar="LOGALYSE_KEEP_QUERY",
            help="Query-string key to keep besides utm_* and ref (repeatable).",
        ),
        geoip_options,
        site_option,
        pageview_options,
        behaviour_options,
        lock_timeout_option,
        quiet_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _import_options(params: dict[str, Any]) -> ImportOptions:
    from ..geodb import installed
    from ..ingest import ImportOptions
    from ..privacy import DEFAULT_QUERY_ALLOW

    return ImportOptions(
        format=params["log_format"] or params["format_alias"],
        service=params["service"],
        source_name=params["source_name"],
        tz=params["tz"],
        grace=parse_duration(params["grace"], option="--grace"),
        query_allow=DEFAULT_QUERY_ALLOW + tuple(params["keep_query"]),
        geoip=params["geoip"] or installed(),
        geoip_city=params["geoip_city"],
        sites=params["site"],
        behaviour=_behaviour(params),
        **_pageview_rules(params),
    )


@contextmanager
def _rejects(path: Path | None) -> Iterator[Callable[[str, int, str, str], None] | None]:
    if path is None:
        yield None
        return
    import os

    from ..formats.escape import printable
    from ..store import open_private

    fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what="rejects file")
    with open(fd, "a", encoding="utf-8", errors="backslashreplace") as f:

        def on_reject(source: str, line_no: int, why: str, line: str) -> None:
            # Addresses masked already; controls (a tab, ESC) made visible: one line each.
            f.write(f"{printable(source)}\t{line_no}\t{why}\t{printable(line)}\n")

        yield on_reject


#: From this share of one private address's requests on, an import warns (a proxy).
PROXY_SHARE = 0.5


def _report_malformed(stats: IngestStats) -> None:
    from ..formats.escape import printable

    # Plain text: nothing from a log reaches the terminal unescaped (see printable).
    for s in stats.sources:
        if s.malformed:
            say(f"{printable(s.name)}: {_plural(s.malformed, 'malformed line')}")
            for ln, why, text in s.samples:
                say(f"  line {ln} ({why}): {text}")
        if s.unterminated:
            say(
                f"{printable(s.name)}: 1 unterminated last line "
                + (
                    "not stored (the stream ended mid-line)"
                    if s.kind == "stream"
                    else "left for the next run"
                )
            )
    machines = getattr(stats, "machines", {})
    if machines:
        say(
            f"{_plural(sum(machines.values()), 'request')} of machines with a browser's user "
            "agent counted as bots: "
            + ", ".join(
                f"{n:,} {'not a browser' if reason == 'shape' else reason}"
                for reason, n in sorted(machines.items())
            )
        )
    behind = max((src.one_private for src in stats.sources), default=0.0)
    if behind >= PROXY_SHARE:
        say(
            f"{behind:.0%} of the requests come from one private address: nginx is behind a "
            "proxy or the Docker bridge and logs its address for every visitor, so visitors "
            "and sessions are undercounted. Set nginx's real_ip (set_real_ip_from, "
            "real_ip_header X-Forwarded-For), or log $http_x_forwarded_for (the main format)"
        )
    if stats.late:
        say(
            f"{stats.late:,} lines arrived for days already closed: they got a fresh key, "
            "so their visitors are counted apart from that day's earlier ones"
        )


@cli.command("import", epilog=EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@ingest_options
def import_command(paths: tuple[str, ...], **params: Any) -> None:
    """Import nginx access logs (plain, rotated, .gz, or - for stdin), exactly once.

    Files are imported oldest first; what an earlier run imported is skipped, even
    after logrotate renamed or compressed the file.

    \b
    Examples:
      logalyse import /var/log/nginx/access.log*
      logalyse import --log-format '$remote_addr - - [$time_local] "$request" $status' x.log
      docker compose logs --no-color nginx | logalyse import -
    """
    from ..ingest import StreamInput, ingest
    from ..sources import is_stream

    quiet, lock_timeout = params["quiet"], params["lock_timeout"]
    options = _import_options(params)
    inputs: list[Path | StreamInput] = []
    for p in paths:
        if p == "-":
            inputs.append(StreamInput(sys.stdin.buffer))
        elif is_stream(p):
            inputs.append(StreamInput(open(p, "rb"), label=p))  # noqa: SIM115 - closed at exit
        else:
            inputs.append(Path(p))
    stop = _stop_on_signals()
    with (
        _rejects(params["rejects"]) as on_reject,
        _open_store(lock_timeout=lock_timeout) as store,
        _progress(not quiet and sys.stderr.isatty()) as on_progress,
    ):
        stats = ingest(
            store,
            inputs,
            options,
            on_progress=on_progress,
            on_reject=on_reject,
            lock_timeout=lock_timeout,
            stop=stop,
        )
    if not quiet:
        _report_malformed(stats)
        say(_summary(stats))
        if options.geoip is None and stats.imported:
            say(
                "stored without countries (no GeoIP database): `logalyse geoip update` "
                "installs DB-IP's free one, which imports use from then on"
            )
    if stats.interrupted:
        say("Interrupted: what was read is stored; the same command again imports the rest.")
        raise SystemExit(int(ExitCode.INTERRUPTED))
    bad = stats.mostly_malformed
    if bad:
        s = bad[0]
        from ..ingest import parse_failure_message

        raise CommandFailed(
            parse_failure_message(s),
            int(ExitCode.MOSTLY_MALFORMED),
        )


#: How long a tail flush waits for readers to let go of the database.
TAIL_DB_WAIT = 600.0


@cli.command("tail", epilog=EXIT_CODES_HELP)
@click.argument("target", type=click.Path(path_type=str))
@ingest_options
@click.option(
    "--every",
    default="5s",
    show_default=True,
    envvar="LOGALYSE_FLUSH",
    help="How often what arrived is stored (the database is free in between).",
)
@click.option(
    "--dashboard",
    "dashboard_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep this HTML dashboard up to date (rewritten after a flush, atomically).",
)
@click.option(
    "--dashboard-every",
    default="1m",
    show_default=True,
    help="Rewrite the dashboard at most this often.",
)
@click.option(
    "--dashboard-since",
    default="30d",
    show_default=True,
    help="The dashboard's period (words of report --since).",
)
def tail_command(
    target: str,
    every: str,
    dashboard_path: Path | None,
    dashboard_every: str,
    dashboard_since: str,
    **params: Any,
) -> None:
    """Follow a live access log (like tail -F) or a stream (-), storing it as it comes.

    Survives logrotate (create and copytruncate), a file that does not exist yet and a
    file replaced under it; resumes where the last tail or import stopped. A stream
    (stdin) is read until it ends. SIGTERM or Ctrl-C stores what arrived, then exits 0.

    \b
    Examples:
      logalyse tail /var/log/nginx/access.log
      logalyse tail /var/log/nginx/access.log --dashboard /var/www/stats/index.html
      docker compose logs -f --no-color nginx | logalyse tail -
    """
    from ..sources import is_stream
    from ..tail import tail

    quiet, lock_timeout = params["quiet"], params["lock_timeout"]
    options = _import_options(params)
    seconds = parse_duration(
        every, unit="s", option="--every", shortest=timedelta(seconds=1)
    ).total_seconds()
    board = (
        _Dashboard(
            dashboard_path,
            since=dashboard_since,
            tz=params["tz"],
            every=parse_duration(
                dashboard_every, unit="m", option="--dashboard-every", shortest=timedelta(seconds=1)
            ).total_seconds(),
        )
        if dashboard_path
        else None
    )
    stop = _stop_on_signals()
    if target == "-":
        source: Path | BinaryIO = sys.stdin.buffer
    elif is_stream(target):  # a named pipe: a stream, read until its writers close it
        if not quiet:
            say(f"reading the pipe {_one_line(target)} until it ends")
        source = open(target, "rb")  # noqa: SIM115 - closed at exit
    else:
        source = Path(target)
        if not quiet:
            state = "" if source.exists() else " (not there yet: waiting for it)"
            say(f"following {_one_line(str(source))}{state}; Ctrl-C or SIGTERM to stop")
    with (
        _rejects(params["rejects"]) as on_reject,
        # A flush waits for readers as long as it takes (they hold the file briefly);
        # --lock-timeout is for another writer (the writer lock).
        _open_store(lock_timeout=TAIL_DB_WAIT) as store,
    ):
        stats = tail(
            store,
            source,
            options,
            every=seconds,
            stop=stop,
            on_flush=board.after_flush(store) if board else None,
            on_reject=on_reject,
            lock_timeout=lock_timeout,
        )
        if board:
            board.write(store, stats.imported)  # what the last flush stored
    if not quiet:
        _report_malformed(stats)
        flushes = f"{stats.flushes:,} flush" + ("" if stats.flushes == 1 else "es")
        say(
            f"stored {_plural(stats.imported, 'line')} in {flushes} "
            f"({stats.lines_read:,} read, {stats.already:,} already imported, "
            f"{stats.malformed:,} malformed, {stats.nonaccess:,} non-access; "
            f"{_plural(stats.rotations, 'rotation')} followed)"
        )


class _Dashboard:
    """tail's dashboard: rewritten after a flush that stored something, at most every
    `every` seconds, and once more at the end. A failed write (a full disk, a directory
    made read-only) is said once per kind and tail goes on."""

    def __init__(self, path: Path, *, since: str, tz: str, every: float) -> None:
        from ..reports import scope_for
        from ..scope import DEFAULT_GAP

        self.path, self.every = path, every
        self.filters: dict[str, Any] = {
            "since": since,
            "until": None,
            "tz": tz,
            "host": None,
            "path": None,
            "include_bots": False,
            "gap": DEFAULT_GAP,
        }
        scope_for(**self.filters)  # a bad --dashboard-since is said before tail starts
        self.written_at: float | None = None
        self.imported: int | None = None
        self.failures: set[str] = set()

    def after_flush(self, store: Store) -> Callable[[Any], None]:
        def on_flush(stats: Any) -> None:
            due = self.written_at is None or time.monotonic() - self.written_at >= self.every
            if due and stats.imported != self.imported:
                self.write(store, stats.imported)

        return on_flush

    def write(self, store: Store, imported: int) -> None:
        from .reports import write_dashboard

        if imported == self.imported:
            return
        try:
            write_dashboard(store, self.filters, self.path, limit=10, title=None)
        except OSError as e:
            message = _one_line(f"dashboard not written: {e.strerror or e}: {self.path}")
            if message not in self.failures:
                self.failures.add(message)
                say(message)
            return
        self.written_at, self.imported = time.monotonic(), imported


@cli.command("enrich", epilog=EXIT_CODES_HELP)
@db_option
@click.option(
    "--refresh",
    is_flag=True,
    help="Classify every stored request again, not only those never classified.",
)
@site_option
@pageview_options
@behaviour_options
@lock_timeout_option
@quiet_option
def enrich_command(
    refresh: bool, site: tuple[str, ...], lock_timeout: float, quiet: bool, **rules: Any
) -> None:
    """Classify stored requests again: browsers, bots, pageviews, referrer sources.

    Run it after upgrading logalyse (new bot and referrer lists) or declaring a --site.
    Countries cannot be redone: the addresses they came from were never stored, so a
    GeoIP database added later serves imports from then on.

    \b
    Examples:
      logalyse enrich             # what older imports left unclassified
      logalyse enrich --refresh --site example.org
    """
    from ..refresh import refresh as run_refresh

    with _open_store(lock_timeout=lock_timeout) as store:
        stats = run_refresh(
            store,
            everything=refresh,
            sites=site,
            behaviour=_behaviour(rules),
            **_pageview_rules(rules),
        )
    if not quiet:
        say(
            f"classified {_plural(stats.user_agents, 'user agent')} and "
            f"{_plural(stats.requests, 'request')}; "
            f"{_plural(stats.without_country, 'request')} without a country stay so "
            "(their addresses were never stored)"
        )

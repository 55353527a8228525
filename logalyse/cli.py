"""The `logalyse` command: parse options, call the library, render, map errors to exit codes.

Each command is a thin shell over a library function; heavy modules (duckdb, ua-parser)
are imported inside the commands so that `logalyse --help` starts fast.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import click

from .errors import ExitCode, LogalyseError

if TYPE_CHECKING:
    from rich.console import Console

    from .ingest import ImportOptions
    from .model import IngestStats
    from .store import Store

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {c.value:<4}{text}"
    for c, text in (
        (ExitCode.OK, "success"),
        (ExitCode.ERROR, "failure (unreadable input, database error)"),
        (ExitCode.USAGE, "bad usage (unknown option, invalid --format)"),
        (ExitCode.MOSTLY_MALFORMED, "most lines of an input did not parse: wrong --format?"),
        (ExitCode.LOCKED, "the database stayed locked by another logalyse process"),
        (ExitCode.INTERRUPTED, "interrupted"),
    )
)


class CommandFailed(click.ClickException):
    """A LogalyseError on its way out, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it on the class


class _Group(click.Group):
    """The one place errors become messages and exit codes: each is one line, with any
    control character made visible (an option's value, a path, may carry them)."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as e:
            e.message = _one_line(e.message)  # type: ignore[misc]  # Final in stubs only
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LogalyseError as e:
            raise CommandFailed(_one_line(str(e)), int(e.exit_code)) from e
        except click.ClickException as e:
            e.message = _one_line(e.message)  # type: ignore[misc]  # Final in stubs only
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except OSError as e:  # a full disk, a read-only directory: said plainly
            where = f": {e.filename}" if e.filename else ""
            raise CommandFailed(_one_line(f"{e.strerror or e}{where}"), ExitCode.ERROR) from e
        except Exception as e:
            if type(e).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
                raise
            # DuckDB's own words (a full disk, a damaged file), first line only.
            full = "the disk is full; what earlier commits stored is intact: " * (
                "No space left on device" in str(e)
            )
            raise CommandFailed(_one_line(f"database error: {full}{e}"), ExitCode.ERROR) from e


def _one_line(text: str) -> str:
    from .formats.escape import printable

    return printable(text.strip().splitlines()[0] if text.strip() else text)


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def say(text: str) -> None:
    """Narration: one line on stderr (stdout is for data)."""
    click.echo(text, err=True)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a store option where `_store_setting` finds it, with where it came from: it may
    be given before the command name (the group's) or after it (the command's)."""
    if value is not None and param.name:
        given = ctx.meta.setdefault("logalyse.store", [])
        given.append((param.name, value, ctx.get_parameter_source(param.name)))
    return value


def db_option(fn: F) -> F:
    """--db and --keys-dir: which store, and where its day keys live."""
    fn = click.option(
        "--keys-dir",
        "keys_dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="LOGALYSE_KEYS_DIR",
        show_envvar=True,
        expose_value=False,
        callback=_remember,
        help="Directory for the day-key file, e.g. a tmpfs such as /run/logalyse "
        "[default: beside the database].",
    )(fn)
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="LOGALYSE_DB",
        show_envvar=True,
        expose_value=False,
        callback=_remember,
        help="Database file [default: $XDG_DATA_HOME/logalyse/logalyse.duckdb].",
    )(fn)


def geoip_options(fn: F) -> F:
    fn = click.option(
        "--geoip-city",
        is_flag=True,
        envvar="LOGALYSE_GEOIP_CITY",
        help="Keep the city's name too (never coordinates).",
    )(fn)
    return click.option(
        "--geoip",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="LOGALYSE_GEOIP",
        show_envvar=True,
        help="A MaxMind-format City or Country .mmdb (GeoLite2, DB-IP lite) for countries.",
    )(fn)


def site_option(fn: F) -> F:
    return click.option(
        "--site",
        multiple=True,
        envvar="LOGALYSE_SITES",
        show_envvar=True,
        help="The site's own host (repeatable): referrals from it are internal. "
        "Found from the log when it does not say.",
    )(fn)


def _stop_on_signals() -> threading.Event:
    """An event that SIGTERM and SIGINT set: long-running commands stop cleanly at their
    next check (a flag, not KeyboardInterrupt, which could land inside a DuckDB query).
    A second Ctrl-C interrupts at once."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return stop


def format_option(fn: F) -> F:
    """--format table|json|csv|tsv and --json, for every command that prints a report."""
    fn = click.option("--json", "as_json", is_flag=True, help="Shorthand for --format json.")(fn)
    return click.option(
        "--format",
        "format_",
        type=click.Choice(["table", "json", "csv", "tsv"], case_sensitive=False),
        default="table",
        show_default=True,
        help="table on a terminal (no colour in a pipe), or json/csv/tsv for scripts.",
    )(fn)


def _render(reports: list[Any], format_: str, as_json: bool) -> None:
    from .render import render

    render(reports, "json" if as_json else format_.lower(), sys.stdout)


_PRECEDENCE = (
    click.core.ParameterSource.COMMANDLINE,
    click.core.ParameterSource.ENVIRONMENT,
    click.core.ParameterSource.DEFAULT_MAP,  # the config file
)


def _store_setting(name: str) -> tuple[Any, str]:
    """A store option's value and origin: a flag (before or after the command name) beats
    the environment variable, which beats the config file; (None, "default") otherwise."""
    given = click.get_current_context().meta.get("logalyse.store", [])
    for wanted in _PRECEDENCE:
        for n, value, source in reversed(given):  # the command's own flag first
            if n == name and source == wanted:
                return value, wanted.name
    return None, "default"


def _open_store(**kw: Any) -> Store:
    """The store the options name (see `_store_setting`)."""
    from .store import Store, default_db_path

    db, _ = _store_setting("db_path")
    keys_dir, _ = _store_setting("keys_dir")
    return Store(db or default_db_path(), keys_dir=keys_dir, **kw)


def _default_map(group: click.Group, values: dict[str, Any]) -> dict[str, Any]:
    """Click's default_map (per command, per parameter) for the config file's values."""
    from .config import BY_NAME

    out: dict[str, Any] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            sub = {}
            for sub_name, sub_command in command.commands.items():
                sub[sub_name] = _defaults_for(name, sub_command, values, BY_NAME)
            out[name] = sub
        else:
            out[name] = _defaults_for(name, command, values, BY_NAME)
    return out


def _defaults_for(
    name: str, command: click.Command, values: dict[str, Any], keys: dict[str, Any]
) -> dict[str, Any]:
    params = {p.name for p in command.params}
    out = {}
    for key_name, value in values.items():
        key = keys[key_name]
        if (name in key.commands or "*" in key.commands) and key.param in params:
            out[key.param] = value
    return out


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


#: No duration logalyse takes is longer: a gap, a grace period, a flush interval.
LONGEST_DURATION = timedelta(days=366)


def parse_duration(
    text: str, unit: str = "h", *, option: str, shortest: timedelta = timedelta(0)
) -> timedelta:
    """`90s`, `30m`, `2h`, `1d` (a bare number is in `unit`: hours unless told), between
    `shortest` and LONGEST_DURATION."""
    m = _DURATION_RE.match(text)
    if not m:
        raise click.BadParameter(
            f"{text!r} is not a duration like 30m, 2h or 1d", param_hint=option
        )
    n = float(m.group(1))
    unit = m.group(2) or unit
    seconds = n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    if not shortest.total_seconds() <= seconds <= LONGEST_DURATION.total_seconds():
        raise click.BadParameter(
            f"{text!r} is out of range: from {_say_duration(shortest)} to 366d",
            param_hint=option,
        )
    return timedelta(seconds=seconds)


def _say_duration(d: timedelta) -> str:
    s = d.total_seconds()
    return f"{s / 60:g}m" if s >= 60 else f"{s:g}s"


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="logalyse")
@db_option
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LOGALYSE_CONFIG",
    show_envvar=True,
    help="Config file (TOML) [default: $XDG_CONFIG_HOME/logalyse/config.toml].",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Privacy-respecting visitor analytics from the nginx access logs you already have.

    Addresses are hashed with a secret key per day, which is destroyed once the day
    is over; no raw IP address is ever written to disk.
    """
    from .config import default_path, load

    path = config_path or default_path()
    try:
        values = load(path, required=config_path is not None)
    except LogalyseError as e:
        raise CommandFailed(str(e), int(e.exit_code)) from e
    ctx.obj = {"config_path": path, "config": values}
    ctx.default_map = _default_map(cli, values)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=_stderr_console(),
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(Path(name).name, total=total or None)
            progress.update(tasks[name], completed=done, total=total or None)

        yield update


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _summary(stats: IngestStats) -> str:
    return (
        f"imported {_plural(stats.imported, 'line')} from {_plural(len(stats.sources), 'input')} "
        f"in {stats.seconds:.1f}s "
        f"({stats.lines_read:,} read, {stats.already:,} already imported, "
        f"{stats.malformed:,} malformed, {stats.nonaccess:,} non-access"
        + (f", {stats.withheld:,} not stored" if stats.withheld else "")
        + ")"
    )


def pageview_options(fn: F) -> F:
    fn = click.option(
        "--non-page",
        multiple=True,
        envvar="LOGALYSE_NON_PAGES",
        help="A path that is never a pageview, besides /robots.txt, /favicon.ico... (repeatable).",
    )(fn)
    return click.option(
        "--asset-ext",
        multiple=True,
        envvar="LOGALYSE_ASSET_EXT",
        help="An extension that is not a page, besides .css .js .png... (repeatable).",
    )(fn)


def _pageview_rules(params: dict[str, Any]) -> dict[str, Any]:
    from .enrich import DEFAULT_ASSET_EXTENSIONS, DEFAULT_NON_PAGES

    extra = tuple(e.lower().lstrip(".") for e in params["asset_ext"])
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
            "--format",
            "format_",
            envvar="LOGALYSE_FORMAT",
            help="Preset (combined, common, vhost_combined, main, json) or an nginx log_format "
            "string as written in nginx.conf. Detected from the first lines when omitted.",
        ),
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
        lock_timeout_option,
        click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _import_options(params: dict[str, Any]) -> ImportOptions:
    from .ingest import ImportOptions
    from .privacy import DEFAULT_QUERY_ALLOW

    return ImportOptions(
        format=params["format_"],
        service=params["service"],
        source_name=params["source_name"],
        tz=params["tz"],
        grace=parse_duration(params["grace"], option="--grace"),
        query_allow=DEFAULT_QUERY_ALLOW + tuple(params["keep_query"]),
        geoip=params["geoip"],
        geoip_city=params["geoip_city"],
        sites=params["site"],
        **_pageview_rules(params),
    )


@contextmanager
def _rejects(path: Path | None) -> Iterator[Callable[[str, int, str, str], None] | None]:
    if path is None:
        yield None
        return
    import os

    from .formats.escape import printable
    from .store import open_private

    fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what="rejects file")
    with open(fd, "a", encoding="utf-8", errors="backslashreplace") as f:

        def on_reject(source: str, line_no: int, why: str, line: str) -> None:
            # Addresses masked already; controls (a tab, ESC) made visible: one line each.
            f.write(f"{printable(source)}\t{line_no}\t{why}\t{printable(line)}\n")

        yield on_reject


def _report_malformed(stats: IngestStats) -> None:
    from .formats.escape import printable

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
      logalyse import --format '$remote_addr - $remote_user [$time_local] "$request" $status' x.log
      docker compose logs --no-color nginx | logalyse import -
    """
    from .ingest import StreamInput, ingest
    from .sources import is_stream

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
    if stats.interrupted:
        say("Interrupted: what was read is stored; the same command again imports the rest.")
        raise SystemExit(int(ExitCode.INTERRUPTED))
    bad = stats.mostly_malformed
    if bad:
        s = bad[0]
        from .ingest import parse_failure_message

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
def tail_command(target: str, every: str, **params: Any) -> None:
    """Follow a live access log (like tail -F) or a stream (-), storing it as it comes.

    Survives logrotate (create and copytruncate), a file that does not exist yet and a
    file replaced under it; resumes where the last tail or import stopped. A stream
    (stdin) is read until it ends. SIGTERM or Ctrl-C stores what arrived, then exits 0.

    \b
    Examples:
      logalyse tail /var/log/nginx/access.log
      docker compose logs -f --no-color nginx | logalyse tail -
    """
    from .sources import is_stream
    from .tail import tail

    quiet, lock_timeout = params["quiet"], params["lock_timeout"]
    options = _import_options(params)
    seconds = parse_duration(
        every, unit="s", option="--every", shortest=timedelta(seconds=1)
    ).total_seconds()
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
            on_reject=on_reject,
            lock_timeout=lock_timeout,
        )
    if not quiet:
        _report_malformed(stats)
        flushes = f"{stats.flushes:,} flush" + ("" if stats.flushes == 1 else "es")
        say(
            f"stored {_plural(stats.imported, 'line')} in {flushes} "
            f"({stats.lines_read:,} read, {stats.already:,} already imported, "
            f"{stats.malformed:,} malformed, {stats.nonaccess:,} non-access; "
            f"{_plural(stats.rotations, 'rotation')} followed)"
        )


@cli.command("enrich", epilog=EXIT_CODES_HELP)
@db_option
@click.option(
    "--refresh",
    is_flag=True,
    help="Classify every stored request again, not only those never classified.",
)
@site_option
@pageview_options
@lock_timeout_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
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
    from .refresh import refresh as run_refresh

    with _open_store(lock_timeout=lock_timeout) as store:
        stats = run_refresh(store, everything=refresh, sites=site, **_pageview_rules(rules))
    if not quiet:
        say(
            f"classified {_plural(stats.user_agents, 'user agent')} and "
            f"{_plural(stats.requests, 'request')}; "
            f"{_plural(stats.without_country, 'request')} without a country stay so "
            "(their addresses were never stored)"
        )


# -- upkeep --------------------------------------------------------------------------------


@cli.group("config", context_settings=CONTEXT_SETTINGS)
def config_group() -> None:
    """The configuration file and the settings in effect."""


@config_group.command("show", epilog=EXIT_CODES_HELP)
@format_option
@click.pass_context
def config_show(ctx: click.Context, format_: str, as_json: bool) -> None:
    """Print every setting's effective value and where it came from.

    Precedence: a flag, then the environment variable, then the config file, then the
    default. Keys of the file are the names in the first column.
    """
    from .admin import config_report
    from .config import Setting, effective
    from .store import default_db_path

    root = ctx.find_root()
    obj = root.obj or {}
    flags: dict[str, object] = {}
    for key, param in (("db", "db_path"), ("keys_dir", "keys_dir")):
        value, origin = _store_setting(param)
        if origin == "COMMANDLINE":
            flags[key] = str(value)
    settings = [
        # The db's default is a path only the store knows.
        Setting("db", str(default_db_path()), "default")
        if s.key == "db" and s.origin == "default"
        else s
        for s in effective(obj.get("config", {}), obj["config_path"], flags=flags)
    ]
    _render(config_report(settings, obj["config_path"]), format_, as_json)


@cli.command("prune", epilog=EXIT_CODES_HELP)
@db_option
@click.option(
    "--older-than",
    required=True,
    help="Age of the oldest data to keep: 13m (months), 400d, 52w, 2y.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
@lock_timeout_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def prune_command(older_than: str, dry_run: bool, lock_timeout: float, quiet: bool) -> None:
    """Delete requests and sessions older than a retention period.

    Checkpoints stay, so a later import of old rotated files does not bring them back.

    \b
    Examples:
      logalyse prune --older-than 13m
      logalyse prune --older-than 90d --dry-run
    """
    from .admin import parse_age, prune

    try:
        age = parse_age(older_than)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--older-than") from e
    with _open_store(lock_timeout=lock_timeout) as store:
        stats = prune(store, age, dry_run=dry_run)
    if not quiet:
        verb = "would delete" if dry_run else "deleted"
        say(
            f"{verb} {_plural(stats.requests, 'request')} and {_plural(stats.sessions, 'session')} "
            f"before {stats.cutoff:%Y-%m-%d}"
        )


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
    import io

    from .reports.live import live

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

    from .render.text import render_table

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


@cli.group("db", context_settings=CONTEXT_SETTINGS)
def db_group() -> None:
    """The database file: what it holds, the inputs it has read."""


@db_group.command("info", epilog=EXIT_CODES_HELP)
@db_option
@format_option
def db_info(format_: str, as_json: bool) -> None:
    """Size, rows, days covered, open day keys, inputs and schema version.

    \b
    Example:
      logalyse db info --json
    """
    from .admin import info

    with _open_store(read_only=True) as store:
        reports = info(store)
    _render(reports, format_, as_json)


@db_group.command("inputs", epilog=EXIT_CODES_HELP)
@db_option
@format_option
def db_inputs(format_: str, as_json: bool) -> None:
    """Every input imported (files and streams), with its checkpoint and requests stored.

    \b
    Example:
      logalyse db inputs
    """
    from .admin import inputs

    with _open_store(read_only=True) as store:
        reports = inputs(store)
    _render(reports, format_, as_json)


@db_group.command("forget", epilog=EXIT_CODES_HELP)
@click.argument("input_name", metavar="INPUT")
@db_option
@click.option("--dry-run", is_flag=True, help="Say what would be dropped, drop nothing.")
@lock_timeout_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def db_forget(input_name: str, dry_run: bool, lock_timeout: float, quiet: bool) -> None:
    """Drop an input's checkpoint and the requests it stored, to import it again.

    INPUT is an id or a name from `logalyse db inputs`, or the path of a log file
    (recognised by its content, whatever it is called now). The next import of it reads
    it from its first line; days whose keys were destroyed get fresh ones (their
    visitors are counted apart from the rest of those days).

    \b
    Examples:
      logalyse db forget /var/log/nginx/access.log.1 --dry-run
      logalyse db forget 3
    """
    from .admin import forget
    from .formats.escape import printable

    with _open_store(lock_timeout=lock_timeout) as store:
        stats = forget(store, input_name, dry_run=dry_run)
    if not quiet:
        verb = "would forget" if dry_run else "forgot"
        say(
            f"{verb} input {stats.id} ({stats.kind} {printable(stats.name)}) and its "
            f"{_plural(stats.requests, 'stored request')}"
            + ("" if dry_run else "; the next import of it reads it from its first line")
        )


# -- reports -------------------------------------------------------------------------------


def report_options(fn: F) -> F:
    """The filters and output options every report takes."""
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
            "--limit",
            type=click.IntRange(1, 1_000_000),
            default=20,
            show_default=True,
            help="Rows per table.",
        ),
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
        format_option,
        db_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@cli.group("report", context_settings=CONTEXT_SETTINGS)
def report_group() -> None:
    """Print a report: tables on a terminal, json/csv/tsv for pipes.

    \b
    Examples:
      logalyse report overview --since 7d
      logalyse report sessions --since month --tz Europe/Paris
      logalyse report referrers --format json | jq '.[0]'
      logalyse report pages --path '/blog/*' --format csv > pages.csv
    """


def _run_report(name: str, params: dict[str, Any]) -> None:
    from .reports import REPORTS
    from .sessions import Scope, period

    tz = params["tz"]
    since, until, label = period(params["since"], params["until"], tz)
    scope = Scope(
        since=since,
        until=until,
        host=params["host"],
        path=params["path_glob"],
        include_bots=params["include_bots"],
        tz=tz,
        limit=params["limit"],
        gap=parse_duration(params["gap"], option="--gap", shortest=timedelta(minutes=1)),
        label=label,
    )
    fn = REPORTS[name]
    with _open_store(read_only=True) as store:
        reports = fn(store, scope)
    _render(reports, params["format_"], params["as_json"])


def _add_report_command(name: str, help_text: str) -> None:
    def command(**params: Any) -> None:
        _run_report(name, params)

    command.__doc__ = help_text
    report_group.command(name, help=help_text, epilog=EXIT_CODES_HELP)(report_options(command))


def _add_report_commands() -> None:
    # The names and help live in reports.REPORTS; importing it here would load duckdb at
    # startup, so the list is repeated (tests check that the two agree).
    for name, help_text in REPORT_HELP.items():
        _add_report_command(name, help_text)


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


def main() -> None:
    cli()

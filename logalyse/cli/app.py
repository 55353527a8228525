"""The `logalyse` group and what its commands share: options, the store they name,
durations, and the one place errors become one line and an exit code."""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import ExitCode, LogalyseError

if TYPE_CHECKING:
    from rich.console import Console

    from ..model import IngestStats
    from ..store import Store

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {c.value:<4}{text}"
    for c, text in (
        (ExitCode.OK, "success"),
        (ExitCode.ERROR, "failure (unreadable input, database error)"),
        (ExitCode.USAGE, "bad usage (unknown option, invalid option value)"),
        (ExitCode.MOSTLY_MALFORMED, "most lines of an input did not parse: wrong --log-format?"),
        (ExitCode.LOCKED, "the database stayed locked by another logalyse process"),
        (ExitCode.DOWNLOAD, "geoip update: no network, or the download was refused or bad"),
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
        except BrokenPipeError:  # `logalyse report pages | head`: the reader has had enough
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
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
    from ..formats.escape import printable

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


#: `-q`: for cron, where only errors should reach the mail.
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")


def format_option(fn: F) -> F:
    """--format table|json|csv|tsv|html and --json, for every command that prints a report."""
    fn = click.option("--json", "as_json", is_flag=True, help="Shorthand for --format json.")(fn)
    return click.option(
        "--format",
        "format_",
        type=click.Choice(["table", "json", "csv", "tsv", "html"], case_sensitive=False),
        default="table",
        show_default=True,
        help="table on a terminal (no colour in a pipe), json/csv/tsv for scripts, "
        "or html (a small page for a mail).",
    )(fn)


def _render(reports: list[Any], format_: str, as_json: bool) -> None:
    from ..render import render

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
    from ..store import Store, default_db_path

    db, _ = _store_setting("db_path")
    keys_dir, _ = _store_setting("keys_dir")
    return Store(db or default_db_path(), keys_dir=keys_dir, **kw)


def _default_map(group: click.Group, values: dict[str, Any]) -> dict[str, Any]:
    """Click's default_map (per command, per parameter) for the config file's values."""
    from ..config import BY_NAME

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
    from ..config import default_path, load

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

"""Upkeep: `config show`, `prune`, `db info|inputs|forget`, and `geoip update`."""

from __future__ import annotations

from pathlib import Path

import click

from .app import (
    CONTEXT_SETTINGS,
    EXIT_CODES_HELP,
    _one_line,
    _open_store,
    _plural,
    _render,
    _store_setting,
    cli,
    db_option,
    format_option,
    quiet_option,
    say,
)
from .ingest import lock_timeout_option

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
    from ..admin import config_report
    from ..config import Setting, effective
    from ..store import default_db_path

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
    help="Age of the oldest data to keep: 13mo (months), 400d, 52w, 2y.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
@lock_timeout_option
@quiet_option
def prune_command(older_than: str, dry_run: bool, lock_timeout: float, quiet: bool) -> None:
    """Delete requests and sessions older than a retention period.

    Checkpoints stay, so a later import of old rotated files does not bring them back.

    \b
    Examples:
      logalyse prune --older-than 13mo
      logalyse prune --older-than 90d --dry-run
    """
    from ..admin import parse_age, prune

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
    from ..admin import info

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
    from ..admin import inputs

    with _open_store(read_only=True) as store:
        reports = inputs(store)
    _render(reports, format_, as_json)


@db_group.command("forget", epilog=EXIT_CODES_HELP)
@click.argument("input_name", metavar="INPUT")
@db_option
@click.option("--dry-run", is_flag=True, help="Say what would be dropped, drop nothing.")
@lock_timeout_option
@quiet_option
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
    from ..admin import forget
    from ..formats.escape import printable

    with _open_store(lock_timeout=lock_timeout) as store:
        stats = forget(store, input_name, dry_run=dry_run)
    if not quiet:
        verb = "would forget" if dry_run else "forgot"
        say(
            f"{verb} input {stats.id} ({stats.kind} {printable(stats.name)}) and its "
            f"{_plural(stats.requests, 'stored request')}"
            + ("" if dry_run else "; the next import of it reads it from its first line")
        )


@cli.group("geoip", context_settings=CONTEXT_SETTINGS)
def geoip_group() -> None:
    """The GeoIP database that gives requests their country."""


@geoip_group.command("update", epilog=EXIT_CODES_HELP)
@click.option(
    "--edition",
    type=click.Choice(["country", "city"]),
    default="country",
    show_default=True,
    help="DB-IP Lite's country database, or its city one (larger; see --geoip-city).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to install it [default: $XDG_DATA_HOME/logalyse, where imports look].",
)
@click.option(
    "--url",
    envvar="LOGALYSE_GEOIP_URL",
    show_envvar=True,
    help="Where to download from, with {edition}, {yyyy}, {mm} [default: DB-IP's].",
)
@quiet_option
def geoip_update(edition: str, directory: Path | None, url: str | None, quiet: bool) -> None:
    """Download DB-IP's free IP-to-country database (CC BY 4.0, no account needed), check
    it and install it; imports use it from then on when no --geoip is given.

    A new file comes out each month: run it monthly. The installed file is replaced only
    once the new one is downloaded and checked.

    \b
    Examples:
      logalyse geoip update
      logalyse geoip update --edition city --dir /var/lib/logalyse
    """
    from ..geodb import DEFAULT_URL, update

    result = update(edition, directory, url=url or DEFAULT_URL)
    if not quiet:
        say(
            f"installed {result.kind} of {result.month} ({result.size / 1e6:,.1f} MB) "
            f"as {_one_line(str(result.path))}"
        )

"""Beyond one server: `export` (Parquet) and `keys init --shared | adopt` (one visitor id
across the servers of a site). Reports read exports with `--from` (see `reports`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..keys import SEED_FIRST_DAY
from .app import (
    CONTEXT_SETTINGS,
    EXIT_CODES_HELP,
    _one_line,
    _open_store,
    _plural,
    cli,
    quiet_option,
    say,
)
from .ingest import lock_timeout_option


@cli.command("export", epilog=EXIT_CODES_HELP)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--since", help="Only days from this one on (same words as report --since).")
@click.option(
    "--tables",
    default="requests,sessions,user_agents",
    show_default=True,
    help="Which tables, comma-separated.",
)
@lock_timeout_option
@quiet_option
def export_command(
    directory: Path, since: str | None, tables: str, lock_timeout: float, quiet: bool
) -> None:
    """Write the store as hive-partitioned Parquet (zstd) that DuckDB, ClickHouse, Spark
    or pandas read as it is. Only days changed since the last export are written again,
    each file replaced atomically; a rerun writes nothing. `logalyse report --from DIR`
    reads it (several exports at once: one per server).

    \b
    DIRECTORY/requests/day=YYYY-MM-DD/host=HOST/data.parquet
    DIRECTORY/sessions/day=YYYY-MM-DD/data.parquet
    DIRECTORY/user_agents/data.parquet

    \b
    Examples:
      logalyse export /mnt/stats/$(hostname)
      logalyse export /srv/export --since 30d --tables requests
    """
    from ..exchange import export, parse_tables
    from ..scope import period

    chosen = parse_tables(tables)
    start = period(since, None)[0] if since else None
    first = start.date() if start else None
    with _open_store(read_only=True, lock_timeout=lock_timeout) as store:
        stats = export(store, directory, since=first, tables=chosen)
    if not quiet:
        written = "; ".join(
            f"{t} {_plural(len(days), 'day')}" if days != ["all"] else t
            for t, days in stats.days_written.items()
        )
        say(
            f"exported {_plural(stats.rows, 'row')} to {_one_line(str(directory))}"
            + (f" ({written})" if written else "")
            + f"; {_plural(stats.unchanged, 'day')} unchanged"
        )


@cli.group("keys", context_settings=CONTEXT_SETTINGS)
def keys_group() -> None:
    """Day keys shared by the servers of one site, so that a visitor whose requests a load
    balancer spreads over them has one id (see README, Several servers)."""


@keys_group.command("init", epilog=EXIT_CODES_HELP)
@click.option("--shared", is_flag=True, required=True, help="A seed for several servers.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The new seed file (0600): copy it to each server, then `keys adopt` it there.",
)
@click.option(
    "--first-day",
    default=SEED_FIRST_DAY,
    show_default=True,
    help="The first day the seed gives keys for (earlier days keep random keys).",
)
@quiet_option
def keys_init(shared: bool, output: Path, first_day: str, quiet: bool) -> None:
    """Write a new shared seed.

    \b
    Example:
      logalyse keys init --shared -o seed && scp seed web2: && logalyse keys adopt seed
    """
    from ..admin import write_shared_seed

    write_shared_seed(output, first_day)
    if not quiet:
        say(
            f"wrote a shared seed to {_one_line(str(output))}: copy it to every server, run "
            "`logalyse keys adopt FILE` on each (which deletes it), and keep no other copy"
        )


@keys_group.command("adopt", epilog=EXIT_CODES_HELP)
@click.argument("seed_file", type=click.Path(dir_okay=False, path_type=Path))
@lock_timeout_option
@quiet_option
def keys_adopt(seed_file: Path, lock_timeout: float, quiet: bool) -> None:
    """Take a shared seed into this store's day keys, then overwrite and delete SEED_FILE.

    From then on, days with no key yet get the key every server with this seed derives
    for them; when a day closes, the seed moves on one-way, so its key cannot be had back.
    """
    from ..admin import adopt_shared_seed

    with _open_store(lock_timeout=lock_timeout) as store:
        first = adopt_shared_seed(store, seed_file)
    if not quiet:
        say(
            f"adopted the shared seed: days from {first} on get shared keys; "
            f"{_one_line(str(seed_file))} overwritten and deleted"
        )

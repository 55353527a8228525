"""Beyond one server: a store's tables written out as hive-partitioned Parquet (`export`),
and many such exports read back as one store for the reports (`open_exports`).

An export directory holds:

    requests/day=YYYY-MM-DD/host=HOST/data.parquet   (zstd; day and host in the path only)
    sessions/day=YYYY-MM-DD/data.parquet
    user_agents/data.parquet
    meta/data.parquet
    _logalyse_export.json                              (what was written: per-day fingerprints)

`day` is the UTC day of the request (of a session's start). A request's `ua_id` is a
number made from its user agent's text (`md5_number_lower`), the same on every server, so
that exports of several stores join on it; `user_agents.id` is that number too. Every file
carries the store's schema version (Parquet key-value metadata `logalyse_schema`).

An export is incremental and idempotent: a day is written again only when its
fingerprint (count and a hash of its rows) changed, each file replaced atomically (a
temporary file in the same directory, then a rename), so a reader never sees half a
partition, and a killed export is completed by the next one. Nothing in it identifies a
person any more than the store does: visitor ids are the store's keyed hashes, no address.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from .enrich import is_asset_sql, page_request_sql
from .enrich.behaviour import Behaviour, mark_machines
from .errors import ConfigError, StoreError
from .quote import sql_literal
from .store import SCHEMA_VERSION, TABLES, Store, remake_all_sessions, transaction

EXPORT_TABLES = ("requests", "sessions", "user_agents")
MANIFEST = "_logalyse_export.json"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive's (and Spark's, DuckDB's) NULL


@dataclass
class ExportStats:
    directory: Path
    days_written: dict[str, list[str]] = field(default_factory=dict)  # table -> days
    days_removed: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0  # rows written
    unchanged: int = 0  # days (and whole tables) already exported as they are


def parse_tables(text: str) -> tuple[str, ...]:
    """`requests,sessions` -> ("requests", "sessions"); ConfigError for an unknown name."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in names if t not in EXPORT_TABLES]
    if unknown or not names:
        raise ConfigError(
            f"unknown table {', '.join(map(repr, unknown)) or '(none)'}: "
            f"export takes {', '.join(EXPORT_TABLES)}"
        )
    return names


def _kv() -> str:
    return f"KV_METADATA {{logalyse_schema: '{SCHEMA_VERSION}'}}"


def _copy(con: object, select: str, params: list[object], target: Path) -> int:
    """Write one Parquet file atomically; return its rows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    con.execute(  # type: ignore[attr-defined]
        f"COPY ({select}) TO {sql_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd, {_kv()})",
        params,
    )
    os.replace(tmp, target)
    rows = con.execute(  # type: ignore[attr-defined]
        f"SELECT count(*) FROM read_parquet({sql_literal(str(target))})"
    ).fetchall()[0][0]
    return int(rows)


def _fingerprint_sql(table: str, day: str) -> str:
    cols = ", ".join(c.name for c in TABLES[table])
    return (
        f"SELECT CAST({day} AS DATE)::VARCHAR AS day, "
        f"count(*)::VARCHAR || ':' || sum(hash({cols})::HUGEINT)::VARCHAR AS fp "
        f"FROM {table} GROUP BY 1"
    )


#: A directory name may hold 255 bytes: a longer host (only a stranger's Host header is
#: that long) is cut, with a hash of the whole to keep hosts apart.
LONGEST_HOST_DIR = 200


def _host_dir(host: str | None) -> str:
    """The partition directory of `host`, percent-encoded (no `/`, no `..` of its own).

    Example:
        >>> _host_dir("example.org"), _host_dir("a/../b"), _host_dir(None)
        ('host=example.org', 'host=a%2F..%2Fb', 'host=__HIVE_DEFAULT_PARTITION__')
        >>> len(_host_dir("x" * 1000)) <= 255
        True
    """
    if host is None:
        return "host=" + NULL_PARTITION
    encoded = quote(host, safe="")
    if len(encoded) > LONGEST_HOST_DIR:
        digest = hashlib.blake2b(host.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        encoded = encoded[: LONGEST_HOST_DIR - 20].rstrip("%0123456789ABCDEF") + "~" + digest
    return "host=" + encoded


def export(
    store: Store,
    directory: str | Path,
    *,
    since: date | None = None,
    tables: Sequence[str] = EXPORT_TABLES,
) -> ExportStats:
    """Write the store's tables to `directory` as hive-partitioned Parquet (see the module),
    only the days changed since the last export (from `since` on, when given)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    stats = ExportStats(out)
    manifest_path = out / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except (OSError, ValueError) as e:
        raise StoreError(f"cannot read {manifest_path}: {e}") from e
    if manifest.get("schema_version") not in (None, SCHEMA_VERSION):
        manifest = {}  # another version's export: written again whole
    done: dict[str, dict[str, str]] = manifest.get("tables", {})
    ua_key = "md5_number_lower(u.ua)"
    with store.attached() as con:
        for table in tables:
            if table == "user_agents":
                (fp,) = con.execute(
                    "SELECT count(*)::VARCHAR || ':' || "
                    "coalesce(sum(hash(ua, browser, os, device, is_bot, bot_name))::HUGEINT, 0)"
                    "::VARCHAR FROM user_agents"
                ).fetchall()[0]
                if done.get(table, {}).get("all") == fp:
                    stats.unchanged += 1
                    continue
                cols = ", ".join(c.name for c in TABLES[table] if c.name != "id")
                stats.rows += _copy(
                    con,
                    f"SELECT {ua_key} AS id, {cols} FROM user_agents u ORDER BY id",
                    [],
                    out / table / "data.parquet",
                )
                done[table] = {"all": fp}
                stats.days_written[table] = ["all"]
                continue
            day_of = "ts" if table == "requests" else "start"
            now = dict(con.execute(_fingerprint_sql(table, day_of)).fetchall())
            before = done.get(table, {})
            first = since.isoformat() if since else ""
            changed = sorted(d for d, fp in now.items() if d >= first and before.get(d) != fp)
            gone = sorted(d for d in before if d >= first and d not in now)
            stats.unchanged += sum(1 for d in now if d >= first and d not in changed)
            for day in changed:
                stats.rows += _export_day(con, out, table, day, ua_key)
                before[day] = now[day]
                _save(manifest_path, done | {table: before})
            for day in gone:
                shutil.rmtree(out / table / f"day={day}", ignore_errors=True)
                del before[day]
            done[table] = before
            if changed:
                stats.days_written[table] = changed
            if gone:
                stats.days_removed[table] = gone
        (meta_fp,) = con.execute(
            "SELECT coalesce(string_agg(key || '=' || coalesce(value, ''), ';' ORDER BY key), '') "
            "FROM meta"
        ).fetchall()[0]
        if done.get("meta", {}).get("all") != meta_fp:
            _copy(
                con, "SELECT key, value FROM meta ORDER BY key", [], out / "meta" / "data.parquet"
            )
            done["meta"] = {"all": meta_fp}
    _save(manifest_path, done)
    return stats


def _export_day(con: object, out: Path, table: str, day: str, ua_key: str) -> int:
    start = datetime.fromisoformat(day)
    params: list[object] = [start, start + timedelta(days=1)]
    day_dir = out / table / f"day={day}"
    if table == "sessions":
        cols = ", ".join(c.name for c in TABLES[table])
        return _copy(
            con,
            f"SELECT {cols} FROM sessions WHERE start >= $1 AND start < $2 "
            "ORDER BY start, visitor_id",
            params,
            day_dir / "data.parquet",
        )
    hosts = [
        h
        for (h,) in con.execute(  # type: ignore[attr-defined]
            "SELECT DISTINCT host FROM requests WHERE ts >= $1 AND ts < $2", params
        ).fetchall()
    ]
    cols = ", ".join(
        f"r.{c.name}" if c.name != "ua_id" else f"{ua_key} AS ua_id"
        for c in TABLES["requests"]
        if c.name != "host"
    )
    rows = 0
    written = set()
    for host in hosts:
        where = "r.host IS NULL" if host is None else "r.host = $3"
        rows += _copy(
            con,
            f"SELECT {cols} FROM requests r LEFT JOIN user_agents u ON u.id = r.ua_id "
            f"WHERE r.ts >= $1 AND r.ts < $2 AND {where} ORDER BY r.ts, r.source_id, r.line_no",
            params if host is None else [*params, host],
            day_dir / _host_dir(host) / "data.parquet",
        )
        written.add(_host_dir(host))
    for stale in day_dir.glob("host=*"):  # a host that has no request that day any more
        if stale.name not in written:
            shutil.rmtree(stale, ignore_errors=True)
    return rows


def _save(path: Path, done: dict[str, dict[str, str]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "tables": done}, indent=1))
    os.replace(tmp, path)


# -- reading exports back --------------------------------------------------------------


def find_exports(sources: Sequence[str]) -> list[Path]:
    """The export directories `sources` name: directories, or globs of them."""
    found: list[Path] = []
    for text in sources:
        matches = sorted(glob.glob(os.path.expanduser(text))) if glob.has_magic(text) else [text]
        dirs = [Path(m) for m in matches if (Path(m) / MANIFEST).is_file()]
        if not dirs:
            raise ConfigError(f"{text!r} names no logalyse export (a directory with {MANIFEST})")
        found.extend(d for d in dirs if d not in found)
    for d in found:
        version = json.loads((d / MANIFEST).read_text()).get("schema_version")
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"the export {d} has schema version {version}; this logalyse reads "
                f"{SCHEMA_VERSION}: export it again with this version"
            )
    return found


def _files(dirs: Sequence[Path], table: str) -> list[str]:
    pattern = {"requests": "day=*/host=*/*.parquet", "sessions": "day=*/*.parquet"}.get(
        table, "*.parquet"
    )
    return [str(f) for d in dirs for f in sorted((d / table).glob(pattern))]


def open_exports(sources: Sequence[str], behaviour: Behaviour | None = None) -> Store:
    """One store, in memory, of the requests of every export `sources` name (directories
    or globs, e.g. one per server): the user agents merged by their text, machines marked
    again over the merged requests (a visitor's requests may be spread over servers), and
    sessions made again across them. Reports and the dashboard take it as they take a
    store read from a file."""
    dirs = find_exports(sources)
    store = Store(":memory:")
    con = store.attach()
    requests, agents = _files(dirs, "requests"), _files(dirs, "user_agents")
    with transaction(con):
        if agents:
            con.execute(
                "CREATE TEMP TABLE ua_ids AS SELECT id AS ext, row_number() OVER (ORDER BY id) "
                "AS id FROM (SELECT DISTINCT id FROM read_parquet($1))",
                [agents],
            )
            ua_cols = ", ".join(c.name for c in TABLES["user_agents"] if c.name != "id")
            con.execute(
                f"INSERT INTO user_agents BY NAME SELECT m.id, {ua_cols} FROM "
                "(SELECT DISTINCT ON (id) * FROM read_parquet($1)) a "
                "JOIN ua_ids m ON m.ext = a.id",
                [agents],
            )
        if requests:
            cols = ", ".join(
                f"r.{c.name}" for c in TABLES["requests"] if c.name not in ("ua_id", "host")
            )
            ua = "m.id AS ua_id" if agents else "NULL AS ua_id"
            join = "LEFT JOIN ua_ids m ON m.ext = r.ua_id" if agents else ""
            con.execute(
                f"INSERT INTO requests BY NAME SELECT {cols}, r.host, {ua} "
                "FROM read_parquet($1, hive_partitioning = true, "
                "hive_types = {'day': DATE, 'host': VARCHAR}) r " + join,
                [requests],
            )
        meta = [str(d / "meta" / "data.parquet") for d in dirs if (d / "meta").is_dir()]
        if meta:
            con.execute(
                "INSERT INTO meta SELECT 'site_hosts', string_agg(DISTINCT h, ',' ORDER BY h) "
                "FROM (SELECT unnest(string_split(value, ',')) AS h FROM read_parquet($1) "
                "WHERE key = 'site_hosts') WHERE h <> '' HAVING count(*) > 0",
                [meta],
            )
        _mark_again(con, behaviour or Behaviour())
        remake_all_sessions(con)
    con.execute("DROP TABLE IF EXISTS ua_ids")
    return store


def _mark_again(con: object, behaviour: Behaviour) -> None:
    """Undo each server's behaviour marks (made from its share of a visitor's requests)
    and mark machines again over all of them: as one store that read the whole log would.
    A request's page rule is the default one here (a server's --asset-ext is not known)."""
    page = page_request_sql("r.method", "r.status", is_asset_sql("r.path"))
    by_agent = "coalesce((SELECT u.is_bot FROM user_agents u WHERE u.id = r.ua_id), FALSE)"
    con.execute(  # type: ignore[attr-defined]
        f"UPDATE requests AS r SET bot_reason = NULL, is_bot = {by_agent}, "
        f"is_pageview = NOT {by_agent} AND {page} WHERE r.bot_reason IS NOT NULL"
    )
    mark_machines(con, behaviour=behaviour)

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
from typing import Any
from urllib.parse import quote

from .enrich import is_asset_sql, page_request_sql
from .enrich.behaviour import Behaviour, machine_marks, reason_sql
from .errors import ConfigError, StoreError
from .quote import sql_literal
from .store import SCHEMA_VERSION, TABLES, Store, remake_all_sessions, transaction

EXPORT_TABLES = ("requests", "sessions", "user_agents")
MANIFEST = "_logalyse_export.json"
#: A user agent's id in an export: a number made from its text, the same on every server.
UA_KEY = "md5_number_lower(u.ua)"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive's (and Spark's, DuckDB's) NULL


@dataclass
class ExportStats:
    directory: Path
    days_written: dict[str, list[str]] = field(default_factory=dict)  # table -> days
    days_removed: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0  # rows written
    unchanged: int = 0  # days already exported as they are


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


def _copy(con: Any, select: str, params: list[object], target: Path) -> int:
    """Write one Parquet file atomically; return its rows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    ((rows,),) = con.execute(
        f"COPY ({select}) TO {sql_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd, {_kv()})",
        params,
    ).fetchall()
    os.replace(tmp, target)
    return int(rows)


def _fingerprint(table: str, skip: str = "") -> str:
    """SQL: an aggregate that changes when any row of `table` does (its count, and the sum
    of its rows' hashes, column `skip` left out)."""
    cols = ", ".join(c.name for c in TABLES[table] if c.name != skip)
    return f"count(*)::VARCHAR || ':' || coalesce(sum(hash({cols})::HUGEINT), 0)::VARCHAR"


def _fingerprint_sql(table: str, day: str) -> str:
    return (
        f"SELECT CAST({day} AS DATE)::VARCHAR AS day, {_fingerprint(table)} AS fp "
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
    with store.attached() as con:
        # The store an export is of: its id (a store made before ids: when it was made).
        (owner,) = con.execute(
            "SELECT coalesce(max(value) FILTER (key = 'store_id'), "
            "'created ' || max(value) FILTER (key = 'created_at'), '') FROM meta"
        ).fetchall()[0]
        if manifest.get("store", owner) != owner:
            raise ConfigError(
                f"{out} holds the export of another store ({manifest['store']}): export "
                "each store to a directory of its own (e.g. /mnt/stats/$(hostname))"
            )
        if manifest.get("schema_version") not in (None, SCHEMA_VERSION):
            manifest = {}  # another version's export: written again whole
        done: dict[str, dict[str, str]] = manifest.get("tables", {})

        # Every step streams (no sort): under a small limit DuckDB drops the blocks of the
        # file it has read instead of keeping them (a 5M-request store: 188 MiB, not 356).
        con.execute(f"SET memory_limit = '{EXPORT_MEMORY_LIMIT}'")
        try:
            _export_tables(con, out, stats, done, manifest_path, owner, since, tables)
        finally:
            con.execute(f"SET memory_limit = '{store.memory_limit}'")
    _save(manifest_path, owner, done)
    return stats


#: DuckDB's memory for an export (see `export`).
EXPORT_MEMORY_LIMIT = "100MB"


def _export_tables(
    con: Any,
    out: Path,
    stats: ExportStats,
    done: dict[str, dict[str, str]],
    manifest_path: Path,
    owner: str,
    since: date | None,
    tables: Sequence[str],
) -> None:
    for table in tables:
        if table == "user_agents":
            # Not `id`: the export's is made from the text.
            (fp,) = con.execute(f"SELECT {_fingerprint(table, 'id')} FROM user_agents").fetchall()[
                0
            ]
            if done.get(table, {}).get("all") == fp:
                continue
            cols = ", ".join(c.name for c in TABLES[table] if c.name != "id")
            stats.rows += _copy(
                con,
                f"SELECT {UA_KEY} AS id, {cols} FROM user_agents u ORDER BY id",
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
            stats.rows += _export_day(con, out, table, day)
            before[day] = now[day]
            _save(manifest_path, owner, done | {table: before})
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
        _copy(con, "SELECT key, value FROM meta ORDER BY key", [], out / "meta" / "data.parquet")
        done["meta"] = {"all": meta_fp}


def _export_day(con: Any, out: Path, table: str, day: str) -> int:
    start = datetime.fromisoformat(day)
    params: list[object] = [start, start + timedelta(days=1)]
    day_dir = out / table / f"day={day}"
    if table == "sessions":
        cols = ", ".join(c.name for c in TABLES[table])
        return _copy(
            con,
            f"SELECT {cols} FROM sessions WHERE start >= $1 AND start < $2",
            params,
            day_dir / "data.parquet",
        )
    hosts = [
        h
        for (h,) in con.execute(
            "SELECT DISTINCT host FROM requests WHERE ts >= $1 AND ts < $2", params
        ).fetchall()
    ]
    cols = ", ".join(
        f"r.{c.name}" if c.name != "ua_id" else f"{UA_KEY} AS ua_id"
        for c in TABLES["requests"]
        if c.name != "host"
    )
    rows = 0
    written = set()
    for host in hosts:
        where = "r.host IS NULL" if host is None else "r.host = $3"
        partition = _host_dir(host)
        rows += _copy(
            con,
            f"SELECT {cols} FROM requests r LEFT JOIN user_agents u ON u.id = r.ua_id "
            f"WHERE r.ts >= $1 AND r.ts < $2 AND {where}",  # in stored order: no sort
            params if host is None else [*params, host],
            day_dir / partition / "data.parquet",
        )
        written.add(partition)
    for stale in day_dir.glob("host=*"):  # a host that has no request that day any more
        if stale.name not in written:
            shutil.rmtree(stale, ignore_errors=True)
    return rows


def _save(path: Path, owner: str, done: dict[str, dict[str, str]]) -> None:
    """Write the manifest (atomically): the schema, the store it is of, what was written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    doc = {"schema_version": SCHEMA_VERSION, "store": owner, "tables": done}
    tmp.write_text(json.dumps(doc, indent=1))
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
        try:
            version = json.loads((d / MANIFEST).read_text()).get("schema_version")
        except (OSError, ValueError, AttributeError) as e:
            raise StoreError(f"cannot read {d / MANIFEST}: {e}") from e
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
    """One store, in memory, over every export `sources` name (directories or globs, e.g.
    one per server), which reports and the dashboard take as they take a store read from
    a file. The requests stay in the Parquet files (views read them: memory does not grow
    with them); the user agents are merged by their text; machines with a browser's user
    agent are judged again over the merged requests (a visitor's requests may be spread
    over servers); sessions are made again across them."""
    dirs = find_exports(sources)
    store = Store(":memory:")
    con = store.attach()
    requests, agents = _files(dirs, "requests"), _files(dirs, "user_agents")
    con.execute("DROP TABLE requests")
    con.execute(
        "CREATE TABLE ua_ids (ext UBIGINT, id INTEGER)"
        if not agents
        else "CREATE TABLE ua_ids AS SELECT id AS ext, (row_number() OVER (ORDER BY id))::INTEGER "
        f"AS id FROM (SELECT DISTINCT id FROM read_parquet({_list(agents)}))"
    )
    if agents:
        ua_cols = ", ".join(c.name for c in TABLES["user_agents"] if c.name != "id")
        con.execute(
            f"INSERT INTO user_agents BY NAME SELECT m.id, {ua_cols} FROM "
            f"(SELECT DISTINCT ON (id) * FROM read_parquet({_list(agents)})) a "
            "JOIN ua_ids m ON m.ext = a.id"
        )
    cols = [c for c in TABLES["requests"] if c.name not in ("ua_id", "host")]
    if requests:
        source = (
            f"read_parquet({_list(requests)}, hive_partitioning = true, "
            "hive_types = {'day': DATE, 'host': VARCHAR}) r LEFT JOIN ua_ids m ON m.ext = r.ua_id"
        )
        names = ", ".join(f"r.{c.name}" for c in cols) + ", r.host, m.id AS ua_id"
    else:  # no requests at all: an empty view of the right shape
        source = "(SELECT 1) WHERE FALSE"
        names = ", ".join(f"NULL::{c.type.split()[0]} AS {c.name}" for c in TABLES["requests"])
    # Each server's behaviour marks undone (a request back as its user agent says)...
    page = page_request_sql("r.method", "r.status", is_asset_sql("r.path"))
    by_agent = "coalesce(u.is_bot, FALSE)"
    con.execute(
        f"""CREATE VIEW exported AS SELECT r.* EXCLUDE (is_bot, is_pageview, bot_reason),
            CASE WHEN r.bot_reason IS NULL THEN r.is_bot ELSE {by_agent} END AS is_bot,
            CASE WHEN r.bot_reason IS NULL THEN r.is_pageview
                 ELSE NOT {by_agent} AND {page} END AS is_pageview,
            NULL::VARCHAR AS bot_reason
        FROM (SELECT {names} FROM {source}) r LEFT JOIN user_agents u ON u.id = r.ua_id"""
    )
    # ... and machines judged again over them all.
    marks = machine_marks(con, "exported", "user_agents", behaviour)
    con.execute(
        f"""CREATE VIEW requests AS SELECT e.* EXCLUDE (is_bot, is_pageview, bot_reason),
            e.is_bot OR m.reason IS NOT NULL AS is_bot,
            e.is_pageview AND m.reason IS NULL AS is_pageview,
            {reason_sql("m.reason")} AS bot_reason
        FROM exported e LEFT JOIN {marks} m
          ON NOT e.is_bot AND m.visitor_id = e.visitor_id AND m.host = coalesce(e.host, '')"""
    )
    meta = [str(d / "meta" / "data.parquet") for d in dirs if (d / "meta").is_dir()]
    if meta:
        con.execute(
            "INSERT INTO meta SELECT 'site_hosts', string_agg(DISTINCT h, ',' ORDER BY h) "
            f"FROM (SELECT unnest(string_split(value, ',')) AS h FROM read_parquet({_list(meta)}) "
            "WHERE key = 'site_hosts') WHERE h <> '' HAVING count(*) > 0"
        )
    with transaction(con):
        # Bigger buckets than an import's: each is a scan of every file, and the sort of
        # one is small beside what reading them holds (3 x 1M exports: 3.1 s, not 4.9,
        # at the same ~230 MiB).
        remake_all_sessions(con, chunk=READ_CHUNK_PAGEVIEWS)
    return store


#: Pageviews made into sessions per statement when reading exports.
READ_CHUNK_PAGEVIEWS = 300_000


def _list(paths: Sequence[str]) -> str:
    return "[" + ", ".join(sql_literal(p) for p in paths) + "]"

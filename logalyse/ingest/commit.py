"""Row-group commits: staged requests go to the database file with their source's
checkpoint, new user agents, day-key bookkeeping and the dirty-sessions mark, in one
transaction, so that a crash at any moment loses nothing and a rerun counts nothing twice."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import duckdb

from ..enrich import Agent, agent_columns, pageview_sql, source_sql
from ..errors import StoreError
from ..sources import FileInfo
from ..store import Store, columns_sql, mark_sessions_dirty, transaction
from . import options as limits


@dataclass
class Commit:
    """A unit of work for the committer: staged requests and the checkpoint that goes with them."""

    source_id: int
    name: str
    kind: str
    info: FileInfo | None
    batches: list[int]  # batch tables s<N> holding the requests
    first_line: int  # commit staged requests with first_line < line_no <= last_line
    last_line: int
    requests: int  # how many requests that is
    offset: int  # the checkpoint to write
    lines: int
    before: tuple[int, int] | None  # the checkpoint expected in the store; None = new source
    complete: bool
    new_uas: list[tuple[int, str, Agent]]
    new_days: list[str]
    late: dict[str, int]
    sites: tuple[str, ...]  # the site's own hosts: referrals from them are internal


class Committer:
    """Writes staged requests to the database file, one transaction per job.

    It keeps the database attached from one commit to the next, but releases it at
    least every `hold_seconds` so that reports can read while a long import runs.
    """

    def __init__(self, store: Store, hold_seconds: float = limits.HOLD_SECONDS) -> None:
        self.store = store
        self.hold_seconds = hold_seconds
        self._attached_at: float | None = None

    def release(self) -> None:
        if self._attached_at is not None:
            self._attached_at = None
            self.store.detach()

    def _attach(self) -> duckdb.DuckDBPyConnection:
        if self._attached_at is None:
            self.store.attach()
            self._attached_at = time.monotonic()
        return self.store.con

    def add_agents(self, agents: list[tuple[int, str, Agent]]) -> None:
        """Store new user agents ahead of the requests that use them, in a transaction."""
        db = self._attach()
        with transaction(db):
            insert_agents(db, agents)

    def commit(self, job: Commit) -> None:
        db = self._attach()
        with transaction(db):
            insert_agents(db, job.new_uas)
            if job.batches:
                staged = " UNION ALL ".join(f"SELECT * FROM memory.main.s{n}" for n in job.batches)
                in_job = f"line_no > {job.first_line} AND line_no <= {job.last_line}"
                inserted = insert_requests(db, staged, in_job, job.source_id, job.sites)
                if inserted != job.requests:
                    # A staged request without its visitor id or user agent: never drop it.
                    raise StoreError(
                        f"internal error: {job.requests:,} requests of {job.name} were ready "
                        f"but {inserted:,} would have been stored; nothing was committed"
                    )
                # The store always knows which sessions may be stale; the end of the run
                # (or of a tail's flush) makes them again and clears the mark.
                mark_sessions_dirty(db, f"SELECT min(ts), max(ts) FROM ({staged}) WHERE {in_job}")
            if job.new_days:
                db.execute(
                    "INSERT INTO day_keys (day, created_at) "
                    "SELECT unnest($1::DATE[]), now()::TIMESTAMP ON CONFLICT DO NOTHING",
                    [job.new_days],
                )
            for d, n in job.late.items():
                # A late line re-opens its day with a fresh key; it closes again at the end.
                db.execute(
                    "UPDATE day_keys SET late_lines = late_lines + ?, closed_at = NULL "
                    "WHERE day = ?",
                    [n, d],
                )
            if job.sites:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('site_hosts', ?)", [",".join(job.sites)]
                )
            write_checkpoint(db, job)
        assert self._attached_at is not None
        if time.monotonic() - self._attached_at >= self.hold_seconds:
            self.release()


def insert_requests(
    db: duckdb.DuckDBPyConnection, staged: str, where: str, source_id: int, sites: tuple[str, ...]
) -> int:
    """Insert the staged requests matching `where` into `requests`, by column name, with what
    the import decides per request (pageview, source kind); return how many."""
    kind, name = source_sql(
        "s.ref_kind", "s.ref_name", "s.utm_source", "s.referrer_host", "s.host", sites
    )
    pageview = pageview_sql("s.is_bot", "s.method", "s.status", "s.is_asset")
    (inserted,) = db.execute(
        f"""
        INSERT INTO requests BY NAME
        SELECT date_trunc('second', s.ts) AS ts, s.vid AS visitor_id, s.host, s.method,
               s.path, s.query, s.proto AS protocol, s.status, s.bytes, s.referrer, s.ua_id,
               {source_id} AS source_id, s.line_no, s.country, s.city, s.is_bot,
               {pageview} AS is_pageview, s.referrer_host, {kind} AS source_kind,
               {name} AS source_name, s.utm_source, s.utm_medium, s.utm_campaign
        FROM ({staged}) AS s
        WHERE {where}
        """
    ).fetchall()[0]
    return int(inserted)


def insert_agents(db: duckdb.DuckDBPyConnection, agents: list[tuple[int, str, Agent]]) -> None:
    """Insert new user agents (id, text, classification) into `user_agents`."""
    if agents:
        new_uas, params = columns_sql(
            "new_uas",
            id=("INTEGER", [i for i, _, _ in agents]),
            ua=("VARCHAR", [u for _, u, _ in agents]),
            **agent_columns([a for _, _, a in agents]),
        )
        db.execute(f"INSERT INTO user_agents BY NAME SELECT * FROM {new_uas}", params)


def write_checkpoint(db: duckdb.DuckDBPyConnection, job: Commit) -> None:
    """Write a source's checkpoint; an existing one only if it is where this run found it."""
    info = job.info
    if job.before is None:
        db.execute(
            "INSERT INTO sources (id, kind, name, device, inode, fingerprint, fp_len, compressed, "
            "size, complete, byte_offset, lines, first_import, last_import) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP, now()::TIMESTAMP)",
            [
                job.source_id,
                job.kind,
                job.name,
                info.device if info else None,
                info.inode if info else None,
                info.fingerprint if info else None,
                info.fp_len if info else None,
                info.compressed if info else False,
                info.size if info else None,
                job.complete,
                job.offset,
                job.lines,
            ],
        )
        return
    # Optimistic check: the checkpoint must still be where this run found it.
    sets = "byte_offset = ?, lines = ?, name = ?, complete = ?, last_import = now()::TIMESTAMP"
    params: list[Any] = [job.offset, job.lines, job.name, job.complete]
    if info is not None:
        sets += ", device = ?, inode = ?, size = ?, fingerprint = ?, fp_len = ?"
        params += [info.device, info.inode, info.size, info.fingerprint, info.fp_len]
    row = db.execute(
        f"UPDATE sources SET {sets} WHERE id = ? AND byte_offset = ? AND lines = ?",
        [*params, job.source_id, *job.before],
    ).fetchall()
    if not row or row[0][0] != 1:
        raise StoreError(
            f"the checkpoint of {job.name} moved during this import: another process "
            "imported it at the same time; nothing from this batch was kept"
        )

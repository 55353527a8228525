"""The import pipeline: sources -> formats -> privacy -> store, in bounded batches.

Per batch, DuckDB parses every line at once in the store's in-memory instance (which
never spills: staged lines hold raw addresses). Python touches only distinct values:
user agents, client addresses and (day, address, user agent, host) combinations.

Two threads parse batches side by side (DuckDB parses one block's lines on one core).
Parsed batches wait in in-memory tables until a whole DuckDB row group of requests is
ready, then go to the database file together with the source's checkpoint, in one
transaction. A crash at any moment loses nothing and a rerun counts nothing twice.
"""

from __future__ import annotations

import collections
import itertools
import re
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from .enrich import (
    DEFAULT_ASSET_EXTENSIONS,
    DEFAULT_NON_PAGES,
    Agent,
    GeoIP,
    agent_columns,
    classify_agent,
    classify_host,
    classify_with_hints,
    hints_sql,
    is_asset_sql,
    normalise_host,
    pageview_sql,
    referrer_host_steps,
    source_sql,
)
from .errors import ConfigError, SourceError, StoreError
from .formats import LogFormat, StreamPrefix, compile_format, parse_query, printable, unescape
from .formats.detect import SAMPLE_LINES, detect_format, detect_prefix
from .model import IngestStats, SourceStats
from .privacy import (
    DEFAULT_GRACE,
    DEFAULT_QUERY_ALLOW,
    client_address,
    closable_days,
    hmac_pads,
    mask_ips,
    scrub_query_sql,
    strip_referrer_sql,
    visitor_id_sql,
)
from .quote import sql_literal
from .sources import (
    FileInfo,
    LineBlocks,
    content_hash,
    file_info,
    head,
    is_finished,
    oldest_first,
    open_content,
    skip_bytes,
    stream_reader,
)
from .store import (
    ENRICHED_COLUMNS,
    REQUEST_COLUMNS,
    Store,
    columns_sql,
    mark_sessions_dirty,
    remake_dirty_sessions,
    transaction,
)

#: Bytes of log per batch. Two batches are parsed at once, and a batch's tables take a few
#: times its size (1M-line bench, peak RSS at lines/s: 3 MiB 236-238 MiB at ~190k, 4 MiB
#: 253-256 at ~205k, 8 MiB 289 at ~230k; each batch costs ~30 ms whatever its size).
DEFAULT_BATCH_BYTES = 3 << 20
#: DuckDB's row group: a commit of whole row groups is written straight to the file,
#: while a partial one goes through the WAL and is written again at checkpoint.
ROW_GROUP_ROWS = 122_880
#: DuckDB's memory for the end-of-run session remake. It reads the dirty window once per
#: bucket of visitors and would keep every block of the file it read, up to the store's
#: limit; under this one it drops them instead (they are re-read from the file: nothing
#: spills). A bucket's sort (SESSION_CHUNK_PAGEVIEWS) needs less than that.
REMAKE_MEMORY_LIMIT = "100MB"
#: Requests of a mostly malformed input held back before the import gives up on it: by
#: then it is surely the wrong format (see Importer._withholding).
WITHHOLD_MAX_REQUESTS = ROW_GROUP_ROWS
#: A long import detaches the store at least this often, so that reports can get in.
HOLD_SECONDS = 2.0
#: New user agents kept in memory before they are stored ahead of their requests: an
#: attacker who sends a new one with every request must not grow the import's memory.
UA_FLUSH = 5_000
#: Cap on remembered client addresses (each maps to its normalised form).
_IP_CACHE_MAX = 500_000
_NEWLINE = re.compile(b"\n")
#: Text that may hold an address (a dotted quad, or two colons with hex digits between),
#: for `privacy.mask_ips` to look at; RE2, in SQL.
_MAY_HOLD_ADDRESS = r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|:[0-9A-Fa-f.]*:"
_UTM = ("utm_source", "utm_medium", "utm_campaign")
#: Stands for a batch's table of lines in a source's parse query.
_LINES = "__lines__"

ProgressFn = Callable[[str, int, int], None]
#: (input, line number, why it did not parse, the line with addresses masked)
RejectFn = Callable[[str, int, str, str], None]


@dataclass(frozen=True)
class ImportOptions:
    """How to import. Every field has the default a nightly cron job wants."""

    format: str | None = None  # preset or nginx log_format; None = detect per input
    service: str | None = None  # keep one docker compose service
    source_name: str | None = None  # checkpoint name of a stream (default: derived)
    tz: str = "UTC"  # time zone whose midnight ends a day (for day keys)
    grace: timedelta = DEFAULT_GRACE
    query_allow: tuple[str, ...] = DEFAULT_QUERY_ALLOW
    batch_bytes: int = DEFAULT_BATCH_BYTES
    samples: int = 5  # malformed lines kept per input to show
    geoip: str | Path | None = None  # a MaxMind-format City or Country .mmdb
    geoip_city: bool = False  # also keep the city's name (never coordinates)
    sites: tuple[str, ...] = ()  # the site's own hosts: referrals from them are internal
    asset_extensions: tuple[str, ...] = DEFAULT_ASSET_EXTENSIONS  # not pageviews
    non_pages: tuple[str, ...] = DEFAULT_NON_PAGES  # paths that are never pageviews

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ConfigError(f"unknown time zone {self.tz!r} (try UTC or Europe/Paris)") from e
        if self.format is not None:
            compile_format(self.format)  # fail before reading anything
        if self.geoip_city and not self.geoip:
            raise ConfigError("--geoip-city needs a GeoIP database (--geoip)")


@dataclass
class StreamInput:
    """A byte stream to import (stdin, a pipe), with a label for messages."""

    stream: BinaryIO
    label: str = "stdin"


Input = Path | StreamInput


if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

_M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter


def _glibc(function: str, *args: int) -> None:
    """Call a glibc memory function; elsewhere (macOS, musl), do nothing.

    `mallopt(M_MMAP_THRESHOLD, 128 KiB)` fixes the threshold at its default: glibc
    raises it each time a big block is freed, after which blocks of that size come from
    heaps that keep freed memory, and an import's blocks and DuckDB's buffers pile
    up as resident memory. `malloc_trim(0)` hands what the heaps keep back to the system.
    """
    if sys.platform != "linux":
        return
    import ctypes

    try:
        getattr(ctypes.CDLL(None), function)(*args)
    except (OSError, AttributeError):
        pass


_purge_arenas: Callable[[], None] | None = None


def purge_duckdb_memory() -> None:
    """Hand back to the system the memory DuckDB's allocator keeps from freed blocks.

    DuckDB's Linux builds allocate through their own jemalloc, which keeps freed pages
    ("dirty") for a second and returns them from idle worker threads. An import runs its
    queries with `threads = 1`, so there is no idle worker, and the pages of each batch's
    dropped tables stay resident (measured: ~100 MiB at the peak of a 1M-line import).
    This purges every arena through jemalloc's `mallctl`, which DuckDB exports; where it
    does not (another platform or build), it does nothing.
    """
    global _purge_arenas
    if _purge_arenas is None:
        _purge_arenas = _noop
        if sys.platform == "linux":
            import ctypes

            # The compiled module: _duckdb (1.4 on), duckdb.duckdb before.
            lib = sys.modules.get("_duckdb") or sys.modules.get("duckdb.duckdb")
            try:
                mallctl = ctypes.CDLL(lib.__file__).duckdb_je_mallctl  # type: ignore[union-attr]
            except (OSError, AttributeError, TypeError):
                pass
            else:
                mallctl.argtypes = [ctypes.c_char_p] + [ctypes.c_void_p] * 3 + [ctypes.c_size_t]
                _purge_arenas = lambda: mallctl(b"arena.4096.purge", None, None, None, 0)  # noqa: E731
    _purge_arenas()


def _noop() -> None:
    pass


def line_ends(data: bytes | memoryview, consumed: int | None = None) -> array[int]:
    r"""The byte offset just after each newline-terminated line of a block, the last one
    capped at `consumed` (for a last line whose newline was added).

    Example:
        >>> list(line_ends(b"a\nbc\n"))
        [2, 5]
        >>> list(line_ends(b"a\nbc\n", consumed=4))
        [2, 4]
    """
    ends = array("q", (m.end() for m in _NEWLINE.finditer(data)))
    if consumed is not None and ends and ends[-1] > consumed:
        ends[-1] = consumed  # only the last line can have had its newline added
    return ends


def load_lines(con: duckdb.DuckDBPyConnection, table: str, data: bytes | memoryview) -> None:
    r"""Create `table` (ln, line) from a block of newline-terminated lines.

    The block goes to DuckDB as one string that DuckDB splits: no Arrow (pyarrow alone is
    ~50 MiB resident), and a block's parse query runs at least as fast on a DuckDB table
    as on an Arrow one. Invalid UTF-8 is kept the way nginx writes it: `\xNN`.

    Example:
        >>> con = duckdb.connect()
        >>> load_lines(con, "t", b"a\n\xffb\n")
        >>> con.execute("SELECT * FROM t").fetchall()
        [(1, 'a'), (2, '\\xffb')]
        >>> load_lines(con, "blank", b"\n")
        >>> con.execute("SELECT * FROM blank").fetchall()
        [(1, '')]
    """
    if not len(data):
        con.execute(f"CREATE TABLE {table} (ln BIGINT, line VARCHAR)")
        return
    body = memoryview(data)
    if body[-1] == 0x0A:  # a newline
        body = body[:-1]  # a view: the block is not copied for the sake of one byte
    con.execute(
        f"CREATE TABLE {table} AS SELECT unnest(range(1, len(l) + 1)) AS ln, unnest(l) AS line "
        "FROM (SELECT string_split($1, chr(10)) AS l)",
        [str(body, "utf-8", "backslashreplace")],
    )


def _param_sql(query: str, *names: str) -> str:
    """SQL: the first of these query parameters present, URL-decoded (NULL when none).

    A value that does not decode to UTF-8 (`%FF`, Latin-1's `%E9`) is kept as logged:
    `url_decode` would fail the whole batch over it.
    """
    found = [f"nullif(regexp_extract({query}, '(?:^|&){n}=([^&]*)', 1), '')" for n in names]
    value = found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"
    return (
        f"CASE WHEN {query} IS NULL THEN NULL ELSE coalesce(TRY(url_decode({value})), {value}) END"
    )


class LineRanges:
    """A set of line numbers kept as sorted, disjoint ranges: a replay matches stored lines
    mostly in order, so a whole history's worth stays a handful of ranges.

    Example:
        >>> r = LineRanges(); r.add([3, 4, 5, 9]); r.add([6, 10]); r.ranges
        [(3, 6), (9, 10)]
    """

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def add(self, numbers: Sequence[int]) -> None:
        runs: list[tuple[int, int]] = []
        for n in sorted(numbers):
            if runs and n <= runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], max(runs[-1][1], n))
            else:
                runs.append((n, n))
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(self.ranges + runs):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.ranges = merged


#: What identifies a request, as the store keeps it: a replayed line is matched to a stored
#: row by these fields (neither the client address nor the visitor id: a closed day's key
#: is gone, so the same line would get another id).
_BATCH_KEY = (
    "hash(date_trunc('second', ts)::TIMESTAMP, nullif(host, ''), method, path, query, proto, "
    f"status::INTEGER, bytes, {strip_referrer_sql('referrer')}, ua)"
)
_STORED_KEY = (
    "hash(r.ts::TIMESTAMP, r.host, r.method, r.path, r.query, r.protocol, r.status::INTEGER, "
    "r.bytes, r.referrer, u.ua)"
)


def mark_replayed(
    con: duckdb.DuckDBPyConnection, stage: str, source_id: int, prior_lines: int,
    matched: LineRanges,
) -> int:  # fmt: skip
    """Streams: mark as seen (`old`) the requests of batch table `stage` that an earlier run
    of the same stream stored: a replay, as `docker compose logs` prints its whole history
    again. Needs the database attached (as `db`); returns how many were marked.

    A replayed line is recognised by what it is, not by where its time falls (nginx logs
    in completion order, so times go back and forth by seconds): per second, the batch's
    requests and the stream's stored rows are matched as multisets of their stored fields,
    N identical lines against M stored ones leaving N - M new. Only rows of earlier runs
    (line numbers up to `prior_lines`) can be matched, each once per run (`matched`
    remembers them): this run's own lines are new, identical or not. Lines that are not
    requests (errors, start-up lines) before the batch's last replayed line were seen with it.
    """
    lo, hi = con.execute(
        f"SELECT min(date_trunc('second', ts)), max(date_trunc('second', ts)) FROM {stage} "
        "WHERE kind = 'ok'"
    ).fetchall()[0]
    if lo is None:
        return 0
    used, used_params = columns_sql(
        "used",
        lo=("BIGINT", [a for a, _ in matched.ranges]),
        hi=("BIGINT", [b for _, b in matched.ranges]),
    )
    pairs = con.execute(
        f"""
        WITH b AS (
            SELECT ln, {_BATCH_KEY} AS k FROM {stage} WHERE kind = 'ok'
        ), c AS (
            SELECT r.line_no, {_STORED_KEY} AS k
            FROM db.requests r LEFT JOIN db.user_agents u ON r.ua_id = u.id
            WHERE r.source_id = $sid AND r.line_no <= $prior AND r.ts >= $lo AND r.ts <= $hi
              AND NOT EXISTS (SELECT 1 FROM {used} WHERE r.line_no BETWEEN used.lo AND used.hi)
        )
        SELECT b.ln, c.line_no
        FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY ln) AS occ FROM b) b
        JOIN (SELECT *, row_number() OVER (PARTITION BY k ORDER BY line_no) AS occ FROM c) c
          ON b.k = c.k AND b.occ = c.occ
        """,
        {"sid": source_id, "prior": prior_lines, "lo": lo, "hi": hi, **used_params},
    ).fetchall()
    if not pairs:
        return 0
    matched.add([n for _, n in pairs])
    con.execute(
        f"UPDATE {stage} SET old = TRUE WHERE ln IN (SELECT unnest($1::BIGINT[]))",
        [[ln for ln, _ in pairs]],
    )
    con.execute(
        f"UPDATE {stage} SET old = TRUE WHERE kind <> 'ok' AND ln <= $1", [max(p[0] for p in pairs)]
    )
    return len(pairs)


@dataclass
class _Source:
    """An input being imported: its checkpoint row and parsing state."""

    stats: SourceStats
    kind: str  # file | stream
    id: int
    exists: bool  # its row is in the store (or a commit that creates it is queued)
    offset: int = 0  # content bytes committed (or queued for commit)
    lines: int = 0  # lines committed (files) / highest line_no committed (streams)
    parsed_offset: int = 0  # content bytes parsed (>= offset)
    parsed_lines: int = 0
    queued_offset: int = 0  # content bytes handed to the parsing threads (>= parsed)
    queued_lines: int = 0
    info: FileInfo | None = None
    fmt: LogFormat | None = None
    prefix: StreamPrefix = field(default_factory=StreamPrefix)
    sql: str = ""
    #: streams: the highest line number earlier runs stored (a replay is matched to those)
    prior_lines: int = 0
    #: streams: stored lines (earlier runs') that this run's replayed lines were matched to
    matched: LineRanges = field(default_factory=lambda: LineRanges())

    def __post_init__(self) -> None:
        # Parsing starts where the last commit ended.
        self.parsed_offset = self.queued_offset = self.offset
        self.parsed_lines = self.queued_lines = self.lines
        self.known = self.exists  # stored from before this run


@dataclass
class _Parsed:
    """What a parsing thread hands back about its batch."""

    counts: Counter[tuple[str, bool]] = field(default_factory=Counter)  # (kind, old) -> lines
    days: Counter[date] = field(default_factory=Counter)  # day -> new requests
    #: distinct user agents of new requests that uamap lacks, with their hints
    uas: list[tuple[str, str | None, bool, bool]] = field(default_factory=list)
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (number, why, line)
    own_host: str | None = None  # the host the batch's assets were loaded from


@dataclass
class _Commit:
    """A unit of work for the committer: staged requests and the checkpoint that goes with them."""

    source_id: int
    name: str
    kind: str
    info: FileInfo | None
    batches: list[int]  # batches (tables b<N>, visitor ids in v<N>) holding the requests
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


class _Committer:
    """Writes staged requests to the database file, one transaction per job.

    It keeps the database attached from one commit to the next, but releases it at
    least every HOLD_SECONDS so that reports can read while a long import runs.
    """

    def __init__(self, store: Store, hold_seconds: float = HOLD_SECONDS) -> None:
        self.store = store
        self.hold_seconds = hold_seconds
        self._attached_at: float | None = None

    def release(self) -> None:
        if self._attached_at is not None:
            self._attached_at = None
            self.store.detach()

    def add_agents(self, agents: list[tuple[int, str, Agent]]) -> None:
        """Store new user agents ahead of the requests that use them, in a transaction."""
        if self._attached_at is None:
            self.store.attach()
            self._attached_at = time.monotonic()
        with transaction(self.store.con):
            _insert_agents(self.store.con, agents)

    def commit(self, job: _Commit) -> None:
        if self._attached_at is None:
            self.store.attach()
            self._attached_at = time.monotonic()
        db = self.store.con
        cols = ", ".join(REQUEST_COLUMNS)
        with transaction(db):
            _insert_agents(db, job.new_uas)
            if job.batches:
                staged = " UNION ALL ".join(f"SELECT * FROM memory.main.s{n}" for n in job.batches)
                kind, name = source_sql(
                    "s.ref_kind",
                    "s.ref_name",
                    "s.utm_source",
                    "s.referrer_host",
                    "s.host",
                    job.sites,
                )
                pageview = pageview_sql("s.is_bot", "s.method", "s.status", "s.is_asset")
                (inserted,) = db.execute(
                    f"""
                    INSERT INTO requests ({cols}, {", ".join(ENRICHED_COLUMNS)})
                    SELECT date_trunc('second', s.ts), s.vid, s.host, s.method, s.path, s.query,
                           s.proto, s.status, s.bytes, s.referrer, s.ua_id, {job.source_id},
                           s.line_no, s.country, s.city, s.is_bot, {pageview}, s.referrer_host,
                           {kind}, {name}, s.utm_source, s.utm_medium, s.utm_campaign
                    FROM ({staged}) AS s
                    WHERE s.line_no > {job.first_line} AND s.line_no <= {job.last_line}
                    """
                ).fetchall()[0]
                if inserted != job.requests:
                    # A staged request without its visitor id or user agent: never drop it.
                    raise StoreError(
                        f"internal error: {job.requests:,} requests of {job.name} were ready "
                        f"but {inserted:,} would have been stored; nothing was committed"
                    )
                self._mark_sessions_dirty(db, staged, job)
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
            _write_checkpoint(db, job)
        if time.monotonic() - self._attached_at >= self.hold_seconds:
            self.release()

    @staticmethod
    def _mark_sessions_dirty(db: duckdb.DuckDBPyConnection, staged: str, job: _Commit) -> None:
        """Widen the time window whose sessions must be made again (`meta.sessions_dirty`).

        In the same transaction as the requests, so the store always knows which sessions
        may be stale; `remake_sessions` (once per run) makes them and clears the mark.
        """
        in_job = f"line_no > {job.first_line} AND line_no <= {job.last_line}"
        mark_sessions_dirty(db, f"SELECT min(ts), max(ts) FROM ({staged}) WHERE {in_job}")


def _insert_agents(db: duckdb.DuckDBPyConnection, agents: list[tuple[int, str, Agent]]) -> None:
    if agents:
        new_uas, params = columns_sql(
            "new_uas",
            id=("INTEGER", [i for i, _, _ in agents]),
            ua=("VARCHAR", [u for _, u, _ in agents]),
            **agent_columns([a for _, _, a in agents]),
        )
        db.execute(f"INSERT INTO user_agents BY NAME SELECT * FROM {new_uas}", params)


def _run_now(fn: Callable[..., _Parsed], *args: Any) -> Future[_Parsed]:
    """Call `fn` on this thread, as a future that is already done."""
    from concurrent.futures import Future

    future: Future[_Parsed] = Future()
    try:
        future.set_result(fn(*args))
    except Exception as e:  # raised again by future.result(), like a pool's
        future.set_exception(e)
    return future


def _write_checkpoint(db: duckdb.DuckDBPyConnection, job: _Commit) -> None:
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
    sets = (
        # A stream's replays are matched to its stored rows: the JSON position that
        # schema 4 kept for it is not used any more.
        "byte_offset = ?, lines = ?, position = NULL, name = ?, complete = ?, "
        "last_import = now()::TIMESTAMP"
    )
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


class Importer:
    """One import run against a store. Use `ingest()` unless you need the pieces.

    The caller holds the store's writer lock for the whole run.
    """

    def __init__(
        self,
        store: Store,
        options: ImportOptions,
        *,
        on_progress: ProgressFn | None = None,
        on_reject: RejectFn | None = None,
        hold_seconds: float = HOLD_SECONDS,
        withhold: str = "all",
        stop: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.withhold = withhold  # see _withholding
        #: Set (SIGTERM, Ctrl-C): store what is parsed, read no further, skip what is left.
        self.stop = stop or threading.Event()
        self.options = options
        self.on_progress = on_progress
        self.on_reject = on_reject
        self.keys = store.day_keys()
        self.forced_format = compile_format(options.format) if options.format else None
        self.stats = IngestStats()
        self._connect()
        self._committer = _Committer(store, hold_seconds)
        self._pool: ThreadPoolExecutor | None = None  # made when a first block comes
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._ips: dict[tuple[str, str], str] = {}
        self._last_detection: tuple[LogFormat, StreamPrefix] | None = None
        # Each parsed batch waits in table memory.main.s<N> until a row group of requests
        # is ready: [N, requests in it not yet committed, its last line number].
        self._bid = 0
        self._batches: list[list[int]] = []
        # Per batch: (content offset and lines before it, the end offset of each line).
        self._ends: dict[int, tuple[int, int, array[int]]] = {}
        self._staged = 0  # requests parsed and not yet committed
        self.requests_parsed = 0  # new requests parsed by this run, all inputs
        self._pending_uas: list[tuple[int, str, Agent]] = []
        self._pending_days: set[str] = set()
        self._pending_late: Counter[str] = Counter()
        with self._db() as db:
            (self._next_ua,) = db.execute(
                "SELECT coalesce(max(id), 0) + 1 FROM db.user_agents"
            ).fetchall()[0]
            (self._next_source,) = db.execute(
                "SELECT coalesce(max(id), 0) + 1 FROM db.sources"
            ).fetchall()[0]
            days = db.execute(
                "SELECT strftime(day, '%Y-%m-%d'), closed_at IS NOT NULL FROM db.day_keys"
            ).fetchall()
            stored_sites = db.execute(
                "SELECT value FROM db.meta WHERE key = 'site_hosts'"
            ).fetchall()
        self._known_days = {d for d, _ in days}
        self.closed_days = {d for d, closed in days if closed}
        # The site's own hosts: given, or found by an earlier import.
        self.sites = {normalise_host(h) for h in options.sites}
        self.sites.update(h for r in stored_sites for h in str(r[0]).split(",") if h)
        self._sites_known = bool(self.sites)
        self.geo = GeoIP(options.geoip, city=options.geoip_city) if options.geoip else None
        self._load_user_agents()

    def _load_user_agents(self) -> None:
        """Fill uamap with every stored user agent's id and bot flag, keyed by the hash of
        its text, in one scan: a batch then sends Python only the user agents it has never
        seen (memory and time stay flat with a million distinct user agents). Those stored
        before enrichment (no bot flag yet) are looked up by text when they come."""
        with self._db() as db:
            db.execute(
                "INSERT INTO memory.main.uamap SELECT hash(ua), id, is_bot FROM db.user_agents "
                "WHERE is_bot IS NOT NULL"
            )
            (self._unclassified,) = db.execute(
                "SELECT count(*) FROM db.user_agents WHERE is_bot IS NULL"
            ).fetchall()[0]

    def _connect(self) -> None:
        """This thread's connection to the store's in-memory instance, and its table uamap.

        The store's main connection (which USEs the attached database) commits; each
        parsing thread has its own (self._local).
        """
        self.con = self.store.cursor()
        # Every query on one core: two threads parse batches side by side, and queries
        # spread over both cores would only fight them.
        self.con.execute("SET threads = 1")
        # User agent ids (and bot flags) by hash of the text: a join on 8 bytes, not ~120.
        self.con.execute(
            "CREATE OR REPLACE TABLE memory.main.uamap (uh UBIGINT, ua_id INTEGER, is_bot BOOLEAN)"
        )

    def renew(self) -> None:
        """Between units of work of a long run (tail): let go of the in-memory DuckDB
        instance, the parsing threads and the caches, which grow with time, and go on
        with fresh ones. What the run knows of its sources (checkpoints, a stream's
        position) stays. Does nothing while requests wait to be committed."""
        if self._batches or self._pending_uas:
            return
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for cur in self._cursors:
            cur.close()
        self._cursors.clear()
        self._local = threading.local()
        self.con.close()
        self.store.renew()
        self._connect()
        self._load_user_agents()
        self._ips.clear()
        if self.geo is not None:
            self.geo.forget()
        _glibc("malloc_trim", 0)

    @contextmanager
    def _db(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's connection, with the database attached (as `db`) meanwhile."""
        self.store.attach()
        try:
            yield self.con
        finally:
            self.store.detach()

    # -- entry points ------------------------------------------------------------

    def run(self, inputs: Sequence[Input]) -> IngestStats:
        started = time.monotonic()
        try:
            files: list[Input] = list(oldest_first([i for i in inputs if isinstance(i, Path)]))
            streams: list[Input] = [i for i in inputs if isinstance(i, StreamInput)]
            for inp in files + streams:
                if self.stop.is_set():
                    break
                if isinstance(inp, Path):
                    self.stats.sources.append(self.import_file(inp))
                else:
                    self.stats.sources.append(self.import_stream(inp))
            # Stopped: what is stored stays, the sessions of it wait for the next run
            # (reports make them from the requests meanwhile), and days stay open.
            self.stats.interrupted = self.stop.is_set()
            if not self.stats.interrupted:
                self.remake_sessions()
                self.stats.days_closed = self.close_days()
        finally:
            self.close()
        self.stats.seconds = time.monotonic() - started
        return self.stats

    def close(self) -> None:
        """Let go of the parsing threads, the GeoIP reader and the in-memory tables."""
        if self._pool is not None:
            self._pool.shutdown()
        if self.geo is not None:
            self.geo.close()
        self.con.execute("DROP TABLE IF EXISTS memory.main.uamap")
        for cur in self._cursors:
            cur.close()
        self.con.close()

    def import_file(self, path: Path, *, finished: bool = False) -> SourceStats:
        """Import what is new in one log file (plain or gzip).

        An unterminated last line is read once it ends, or once the file is finished: a
        `.gz` whose end (its trailer) was read, a rotated file no longer written to, or
        `finished` (the caller knows: tail retiring a rotated file). Until then it is left
        for the next run (`SourceStats.unterminated`).
        """
        info = file_info(path)
        stats = SourceStats(name=str(path))
        if info.fp_len == 0:
            stats.note = "empty"
            return stats
        src = self._file_source(info, head(path), stats)
        # Lines before the checkpoint are lines of the input too: read counts them all.
        stats.already = stats.lines_read = src.lines
        if src.exists:
            if not info.compressed and info.size == src.offset:
                stats.note = "unchanged since the last import"
                return stats
            if not info.compressed and info.size < src.offset:
                stats.note = "shorter than what was imported from it: left alone"
                stats.already = stats.lines_read = 0
                return stats
            if info.compressed and stats.note == "complete":
                stats.note = "unchanged since the last import"
                return stats
        with open_content(path) as reader, self._committing():
            if src.offset:
                if info.compressed:
                    skip_bytes(reader, src.offset)
                else:
                    reader.seek(src.offset)
            raw = getattr(reader, "fileobj", None) or reader

            def ended() -> bool:  # asked once the content is read
                if info.compressed:
                    return bool(getattr(reader, "complete", False))
                return finished or is_finished(path)

            def progress() -> None:
                if self.on_progress:
                    self.on_progress(str(path), raw.tell(), info.size)

            blocks = LineBlocks(reader, self.options.batch_bytes, take_partial=ended)
            with closing(self._parsed(src, iter(blocks), progress)) as parsed:
                for _ in parsed:
                    if self.stop.is_set():
                        break  # what is parsed is stored below
                    if self._staged < ROW_GROUP_ROWS:
                        continue
                    if not self._withholding(src):
                        self._hand_off(src, limit=self._staged // ROW_GROUP_ROWS * ROW_GROUP_ROWS)
                    elif self._staged >= WITHHOLD_MAX_REQUESTS:
                        break  # enough to be sure: this is the wrong format
            stats.unterminated = 1 if blocks.left else 0
            if self._withholding(src):
                self._withhold(src)
            else:
                self._hand_off(src, complete=info.compressed and ended())
        return stats

    def import_stream(self, inp: StreamInput) -> SourceStats:
        """Import a stream (stdin), skipping what an earlier run of the same name imported.

        An unterminated last line is not stored: a stream cut mid-line ends with half a
        line, and the whole line comes with the next replay (`SourceStats.unterminated`).
        """
        blocks = LineBlocks(stream_reader(inp.stream), self.options.batch_bytes, take_partial=False)
        stats = self.import_blocks(inp.label, iter(blocks))
        stats.unterminated = 1 if blocks.left else 0
        return stats

    def import_blocks(
        self, label: str, blocks: Iterator[tuple[bytes | memoryview, int]]
    ) -> SourceStats:
        """Import a stream given as blocks of whole lines, committing each block.

        `tail -` hands blocks over as they come (every few seconds), so each is stored
        before the next is awaited.
        """
        stats = SourceStats(name=label, kind="stream")
        first = next(blocks, None)
        if first is None:
            return stats
        src = self._stream_source(first[0], stats)

        def progress() -> None:
            if self.on_progress:
                self.on_progress(stats.name, src.parsed_offset, 0)

        with self._committing():
            # One batch at a time: what a batch skips depends on the one before.
            chain = itertools.chain([first], blocks)
            with closing(self._parsed(src, chain, progress, ahead=0)) as parsed:
                for _ in parsed:
                    if self.stop.is_set() and self._withholding(src):
                        break
                    if not self._withholding(src):
                        self._hand_off(src)
                    elif self.withhold == "new" or self._staged >= WITHHOLD_MAX_REQUESTS:
                        break  # a live stream cannot wait: give up at once
            if self._withholding(src):
                self._withhold(src)
        return stats

    def _withholding(self, src: _Source) -> bool:
        """Whether the input's requests are held back from the store: most of its lines so
        far did not parse, so the format is almost surely wrong, and a checkpoint now would
        make a rerun with the right `--format` skip them (`withhold`: "new" holds back only
        inputs never stored from before, as a live tail wants)."""
        if not src.stats.parse_failures_dominate:
            return False
        return self.withhold == "all" or not src.known

    def _withhold(self, src: _Source) -> None:
        """Store nothing of a mostly malformed input: its checkpoint stays where it was."""
        st = src.stats
        st.withheld, st.imported, st.late = st.imported, 0, 0
        st.note = "nothing stored: most lines did not parse"

    @contextmanager
    def _committing(self) -> Iterator[None]:
        """Around one source: drop whatever is still staged and release the store at the end."""
        try:
            yield
        finally:
            self._drop_batches(len(self._batches))
            self._ends.clear()
            self._staged = 0
            self._pending_uas.clear()
            self._pending_days.clear()
            self._pending_late.clear()
            self._committer.release()

    # -- sources and checkpoints -------------------------------------------------

    def _file_source(self, info: FileInfo, first: bytes, stats: SourceStats) -> _Source:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, fingerprint, fp_len, byte_offset, lines, inode, complete, size, name "
                "FROM db.sources WHERE kind = 'file' AND fp_len <= ?",
                [len(first)],
            ).fetchall()
        matches = [r for r in rows if r[1] == content_hash(first[: r[2]])]
        if not matches:
            sid = self._next_source
            self._next_source += 1
            return _Source(stats=stats, kind="file", id=sid, exists=False, info=info)
        # The most specific fingerprint wins; then the same inode.
        matches.sort(key=lambda r: (r[2], r[5] == info.inode), reverse=True)
        sid, _, _, offset, lines, _, complete, size, name = matches[0]
        if name != str(info.path):
            stats.note = f"imported before as {name}"
        if info.compressed and complete and size == info.size:
            stats.note = "complete"
        return _Source(
            stats=stats,
            kind="file",
            id=sid,
            exists=True,
            offset=offset,
            lines=lines,
            info=info,
        )

    def _stream_source(self, data: bytes | memoryview, stats: SourceStats) -> _Source:
        sample = bytes(data[: 1 << 16]).decode("utf-8", "replace").splitlines()[:SAMPLE_LINES]
        prefix = detect_prefix(sample)
        name = self.options.source_name
        if name is None:
            name = "stdin"
            if prefix.service:
                services = {
                    s.split("|", 1)[0].strip().rstrip("0123456789").rstrip("-_")
                    for s in sample
                    if "|" in s
                }
                if self.options.service:
                    name = f"compose:{self.options.service}"
                elif len(services) == 1:
                    name = f"compose:{services.pop()}"
                else:
                    name = "compose"
        stats.name = name
        with self._db() as db:
            rows = db.execute(
                "SELECT id, byte_offset, lines, position FROM db.sources "
                "WHERE kind = 'stream' AND name = ?",
                [name],
            ).fetchall()
        if not rows:
            sid = self._next_source
            self._next_source += 1
            return _Source(stats=stats, kind="stream", id=sid, exists=False, prefix=prefix)
        sid, offset, lines, _ = rows[0]
        # A stream's byte_offset only counts what was read under this name, over all runs.
        src = _Source(
            stats=stats,
            kind="stream",
            id=sid,
            exists=True,
            offset=offset,
            lines=lines,
            prefix=prefix,
            prior_lines=lines,
        )
        return src

    # -- one batch ---------------------------------------------------------------

    def _prepare(self, src: _Source, data: bytes | memoryview) -> None:
        """Pick the format (given, or detected from the first lines) and compile its query."""
        sample = bytes(data[: 1 << 16]).decode("utf-8", "backslashreplace").splitlines()
        sample = sample[:SAMPLE_LINES]
        if src.kind == "stream":
            src.prefix = detect_prefix(sample)
        if self.forced_format is not None:
            src.fmt = self.forced_format
        else:
            # Rotated files share a format: try the last detection before all presets.
            det = None
            if self._last_detection is not None and src.kind == "file":
                fmt, prefix = self._last_detection
                det = detect_format(self.con, sample, candidates=(fmt,), prefix=prefix)
                if det.parsed * 10 < det.sample * 9:
                    det = None
            if det is None:
                det = detect_format(self.con, sample)
            src.fmt, src.prefix = det.format, det.prefix
            self._last_detection = (det.format, det.prefix)
        src.stats.format = src.fmt.name
        src.sql = parse_query(
            src.fmt,
            _LINES,
            prefix=src.prefix,
            service=self.options.service,
        )

    def _day_expr(self) -> str:
        if self.options.tz == "UTC":
            return "ts::DATE"
        return f"timezone({sql_literal(self.options.tz)}, ts::TIMESTAMPTZ)::DATE"

    def _parsed(
        self,
        src: _Source,
        blocks: Iterator[tuple[bytes | memoryview, int]],
        progress: Callable[[], None],
        ahead: int = 1,
    ) -> Generator[int, None, None]:
        """Parse blocks into batch tables and yield each batch's number, in order.

        DuckDB parses one block's lines on a single core, so two threads parse (each on
        its own connection, without the GIL) while this one reads the next block and
        commits: up to `ahead` blocks are parsed ahead of the one yielded. A stream's
        blocks are parsed here, one at a time: what a block replays is matched against the
        store (attached by this thread) and depends on the blocks before it.
        """
        inflight: collections.deque[tuple[int, Future[_Parsed], int, int]] = collections.deque()
        try:
            for data, consumed in blocks:
                if src.fmt is None:
                    self._prepare(src, data)
                ends = line_ends(data, consumed)
                nlines = len(ends)
                self._bid += 1
                # In a box that the parsing thread empties: the block is let go as soon
                # as DuckDB holds its lines, not when the whole batch is done.
                if src.kind == "stream":
                    future = _run_now(self._parse_batch, src, self._bid, [data], src.queued_lines)
                else:
                    future = self._parse_pool().submit(
                        self._parse_batch, src, self._bid, [data], src.queued_lines
                    )
                del data
                self._ends[self._bid] = (src.queued_offset, src.queued_lines, ends)
                src.queued_lines += nlines
                src.queued_offset += consumed
                inflight.append((self._bid, future, nlines, consumed))
                while len(inflight) > ahead:
                    yield self._finish_batch(src, *inflight.popleft())
                    progress()
            while inflight:
                yield self._finish_batch(src, *inflight.popleft())
                progress()
        finally:
            for _, future, _, _ in inflight:  # after an error: let running parses end first
                if not future.cancel():
                    future.exception()

    def _parse_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # a run with nothing new: none

            _glibc("mallopt", _M_MMAP_THRESHOLD, 128 << 10)
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="logalyse-parse")
        return self._pool

    def _parse_batch(
        self, src: _Source, bid: int, box: list[bytes | memoryview], lines: int
    ) -> _Parsed:
        """(parsing thread) Parse the block in `box` (which it empties) into table s<bid>:
        the batch's requests as they will be stored.

        Runs on the thread's own connection; returns what the importer thread needs.
        """
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self.store.cursor()
            self._cursors.append(con)
        stage = f"memory.main.b{bid}"
        opts = self.options
        lines_tbl = f"memory.main.l{bid}"
        load_lines(con, lines_tbl, box.pop())
        try:
            # Nested steps, so that each value is computed once and used by name after.
            con.execute(
                f"""
                CREATE TABLE {stage} AS
                SELECT *,
                       {_param_sql("query", "utm_source", "ref")} AS utm_source,
                       {_param_sql("query", "utm_medium")} AS utm_medium,
                       {_param_sql("query", "utm_campaign")} AS utm_campaign,
                       {is_asset_sql("path", opts.asset_extensions, opts.non_pages)} AS is_asset,
                       hash(day, client, xff, ua, host) AS ck, hash(ua) AS uh
                FROM (
                    SELECT parsed.* EXCLUDE (query),
                           {scrub_query_sql("parsed.query", opts.query_allow)} AS query,
                           {self._day_expr()} AS day, FALSE AS old,
                           {lines} + ln AS line_no
                    FROM ({src.sql.replace(_LINES, lines_tbl)}) parsed
                )
                """
            )
        finally:
            con.execute(f"DROP TABLE {lines_tbl}")
        self._clean_batch(con, stage)
        if src.kind == "stream" and src.prior_lines:
            with self._db():
                mark_replayed(con, stage, src.id, src.prior_lines, src.matched)
        out = _Parsed()
        for kind, old, day, n in con.execute(
            f"SELECT kind, old, day, count(*) FROM {stage} GROUP BY ALL"
        ).fetchall():
            out.counts[(kind, old)] += n
            if kind == "ok" and not old:
                out.days[day] += n
        batch_rows = f"(SELECT * FROM {stage} WHERE kind = 'ok' AND NOT old)"
        self._visitors(con, bid, batch_rows, list(out.days))
        self._referrers(con, bid, batch_rows)
        # User agents not in uamap: new to this run (and, almost surely, to the store),
        # with their pattern matching done here, in parallel (enrich.hints_sql).
        # (A left join, not NOT IN: it builds its hash table on the batch, not on uamap.)
        out.uas = con.execute(
            f"SELECT ua, {hints_sql('ua')} FROM (SELECT DISTINCT b.ua FROM {batch_rows} b "
            "LEFT JOIN memory.main.uamap m ON b.uh = m.uh WHERE m.uh IS NULL)"
        ).fetchall()
        if not self._sites_known and src.kind == "file":
            out.own_host = self._guess_own_host(con, bid, batch_rows)
        if out.counts[("malformed", False)]:
            limit = "" if self.on_reject else f"LIMIT {self.options.samples}"
            out.malformed = con.execute(
                f"SELECT line_no, why, line FROM {stage} WHERE kind = 'malformed' AND NOT old "
                f"ORDER BY line_no {limit}"
            ).fetchall()
        self._stage(con, bid, batch_rows, out.counts[("ok", False)])
        purge_duckdb_memory()
        return out

    def _stage(self, con: duckdb.DuckDBPyConnection, bid: int, batch_rows: str, ok: int) -> None:
        """Table s<bid>: the batch's requests as they will be stored, waiting for a commit.

        Joined here, on the parsing thread, with their visitor ids, countries and referrers
        (stripped, with their hosts and classes); only the columns the store keeps stay (the
        user agent as its hash), so that the requests waiting for a full row group take
        little memory.
        """
        (staged,) = con.execute(
            f"""
            CREATE TABLE memory.main.s{bid} AS
            SELECT b.ts, v.vid, nullif(b.host, '') AS host, b.method, b.path, b.query, b.proto,
                   b.status, b.bytes, r.referrer, b.uh, b.line_no, v.country, v.city,
                   b.is_asset, r.host AS referrer_host, r.kind AS ref_kind, r.name AS ref_name,
                   b.utm_source, b.utm_medium, b.utm_campaign
            FROM {batch_rows} AS b JOIN memory.main.v{bid} AS v ON b.ck = v.ck
            LEFT JOIN memory.main.r{bid} AS r ON b.referrer = r.raw
            """
        ).fetchall()[0]
        for table in ("b", "v", "r"):
            con.execute(f"DROP TABLE memory.main.{table}{bid}")
        if staged != ok:
            # A request without its visitor id: never drop it silently.
            raise StoreError(
                f"internal error: {ok:,} requests parsed but {staged:,} staged; nothing "
                "was committed"
            )

    def _clean_batch(self, con: duckdb.DuckDBPyConnection, stage: str) -> None:
        """Decode nginx's \\xNN escapes, and mask addresses (`privacy.mask_ips`), in the text
        the store keeps: once per distinct value that may need it. A path, query, referrer,
        host or user agent may hold a client's address (a proxy probe of
        `http://ADDR:port/`, a bot's `+http://ADDR`): none is stored."""

        def may(c: str) -> str:  # LIKE first: it is four times cheaper than the regex
            return (
                f"(contains({c}, '\\x') OR (({c} LIKE '%.%.%.%' OR {c} LIKE '%:%:%') "
                f"AND regexp_matches({c}, '{_MAY_HOLD_ADDRESS}')))"
            )

        # Paths and queries are checked per request; user agents and referrers repeat, so
        # per distinct value. Campaigns are decoded from the query (`%2E`, too): checked.
        found = con.execute(
            f"""
            SELECT v FROM (
                SELECT DISTINCT unnest([path, query, host, {", ".join(_UTM)}]) AS v
                FROM {stage} WHERE kind = 'ok'
                AND ({" OR ".join(may(c) for c in ("path", "query", "host", *_UTM))})
                UNION SELECT any_value(ua) FROM {stage} WHERE kind = 'ok' GROUP BY uh
                UNION SELECT DISTINCT referrer FROM {stage} WHERE kind = 'ok'
            ) WHERE {may("v")}
            """
        ).fetchall()
        changed = [(v, mask_ips(unescape(v))) for (v,) in found]
        changed = [(raw, clean) for raw, clean in changed if raw != clean]
        if not changed:
            return
        esc, params = columns_sql(
            "esc",
            raw=("VARCHAR", [r for r, _ in changed]),
            clean=("VARCHAR", [c for _, c in changed]),
        )
        for c in ("ua", "path", "query", "referrer", "host", *_UTM):
            also = ", uh = hash(esc.clean)" if c == "ua" else ""  # the user agent's join key
            con.execute(
                f"UPDATE {stage} SET {c} = esc.clean{also} FROM {esc} WHERE {stage}.{c} = esc.raw",
                params,
            )

    def _user_agents(self, uas: Sequence[tuple[str, str | None, bool, bool]]) -> None:
        """Give a batch's new user agents ids and a classification (table uamap).

        A user agent the store has seen keeps its id (uamap holds them all, see
        `_load_user_agents`); a new one is parsed once, here, and its row is stored with the
        next commit, or before it once UA_FLUSH of them wait.
        """
        if not uas:
            return
        # Two batches parsed side by side may both have found the same one new.
        hints = {u[0]: u[1:] for u in uas}
        fresh = [
            r[0]
            for r in self.con.execute(
                "SELECT n.ua FROM (SELECT unnest($1::VARCHAR[]) AS ua) n "
                "LEFT JOIN memory.main.uamap m ON hash(n.ua) = m.uh WHERE m.uh IS NULL",
                [list(hints)],
            ).fetchall()
        ]
        if not fresh:
            return
        known: dict[str, tuple[int, bool | None]] = {}
        if self._unclassified:
            with self._db() as db:
                found = db.execute(
                    "SELECT ua, id, is_bot FROM db.user_agents "
                    "WHERE ua IN (SELECT unnest($1::VARCHAR[]))",
                    [fresh],
                ).fetchall()
            known = {ua: (uid, is_bot) for ua, uid, is_bot in found}
        ids: list[int] = []
        bots: list[bool] = []
        for ua in fresh:
            if ua in known:
                uid, flag = known[ua]
                is_bot = classify_agent(ua).is_bot if flag is None else flag  # `enrich` fills it
            else:
                agent = classify_with_hints(ua, *hints[ua])
                uid, is_bot = self._next_ua, agent.is_bot
                self._pending_uas.append((uid, ua, agent))
                self._next_ua += 1
            ids.append(uid)
            bots.append(is_bot)
        new_map, params = columns_sql(
            "new_map", ua=("VARCHAR", fresh), ua_id=("INTEGER", ids), is_bot=("BOOLEAN", bots)
        )
        self.con.execute(
            f"INSERT INTO memory.main.uamap SELECT hash(ua), ua_id, is_bot FROM {new_map}", params
        )
        if len(self._pending_uas) >= UA_FLUSH:
            # Stored ahead of their requests: a user agent without requests harms nothing,
            # and a rerun after a crash finds it by its text.
            self._committer.add_agents(self._pending_uas)
            self._pending_uas.clear()

    def _visitors(
        self, con: duckdb.DuckDBPyConnection, bid: int, batch_rows: str, days: Sequence[date]
    ) -> None:
        """Create table v<bid>: a visitor id (and country) per distinct (day, address, UA, host).

        Python normalises the client fields that need it (X-Forwarded-For, IPv6,
        IPv4-mapped IPv6) and looks countries up, in memory, once per distinct address;
        it hands DuckDB the day keys, and DuckDB computes the HMACs over the distinct
        combinations of the batch, never over every row.
        """
        if len(self._ips) > _IP_CACHE_MAX:
            self._ips.clear()
        ips, geo = self._ips, self.geo
        # Without GeoIP, only the addresses that need normalising come to Python.
        where = (
            ""
            if geo
            else "WHERE xff <> '' OR NOT regexp_full_match(client, '[0-9]{1,3}(\\.[0-9]{1,3}){3}')"
        )
        clients, fwds, addrs, countries, cities = [], [], [], [], []
        for client, xff in con.execute(
            f"SELECT DISTINCT client, xff FROM {batch_rows} {where}"
        ).fetchall():
            addr = ips.get((client, xff))
            if addr is None:
                addr = client_address(client, xff)
                if xff or addr != client:  # a plain address is its own answer: not kept
                    ips[(client, xff)] = addr
            country, city = geo.lookup(addr) if geo else (None, None)
            if addr != client or country is not None:
                clients.append(client)
                fwds.append(xff)
                addrs.append(addr)
                countries.append(country)
                cities.append(city)
        # Creates, and saves, missing keys before any row uses them.
        pads = [hmac_pads(self.keys.key(d.isoformat())) for d in days]
        ipmap, ip_params = columns_sql(
            "m",
            client=("VARCHAR", clients),
            xff=("VARCHAR", fwds),
            addr=("VARCHAR", addrs),
            country=("VARCHAR", countries),
            city=("VARCHAR", cities),
        )
        daykeys, key_params = columns_sql(
            "k",
            day=("DATE", days),
            ipad=("BLOB", [i for i, _ in pads]),
            opad=("BLOB", [o for _, o in pads]),
        )
        vid = visitor_id_sql("k.ipad", "k.opad", "c.addr", "c.ua", "c.host")
        con.execute(
            f"""
            CREATE TABLE memory.main.v{bid} AS
            SELECT c.ck, {vid} AS vid, c.country, c.city FROM (
                SELECT s.ck, any_value(s.day) AS day,
                       any_value(coalesce(m.addr, s.client)) AS addr,
                       any_value(s.ua) AS ua, any_value(s.host) AS host,
                       any_value(m.country) AS country, any_value(m.city) AS city
                FROM {batch_rows} s LEFT JOIN {ipmap} ON s.client = m.client AND s.xff = m.xff
                GROUP BY s.ck
            ) c JOIN {daykeys} ON c.day = k.day
            """,
            {**ip_params, **key_params},
        )

    def _referrers(self, con: duckdb.DuckDBPyConnection, bid: int, batch_rows: str) -> None:
        """Create table r<bid>: per distinct referrer as logged (raw), the referrer as stored
        (without query or fragment), its host and its class (search/social/AI/spam/website).

        Once per distinct referrer, not per request: most requests of a site repeat a
        few referrers (its own pages), and splitting them was a fifth of a batch's parse.
        """
        (rh0, rh0_sql), (rh1, rh1_sql), (_, host_sql) = referrer_host_steps("raw")
        hosts_tbl = f"memory.main.rh{bid}"
        con.execute(
            f"""
            CREATE TABLE {hosts_tbl} AS
            SELECT raw, referrer, {host_sql} AS host FROM (
                SELECT *, {rh1_sql} AS {rh1} FROM (
                    SELECT raw, {strip_referrer_sql("raw")} AS referrer, {rh0_sql} AS {rh0}
                    FROM (SELECT DISTINCT referrer AS raw FROM {batch_rows}
                          WHERE referrer IS NOT NULL)
                )
            )
            """
        )
        hosts = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT host FROM {hosts_tbl} WHERE host IS NOT NULL"
            ).fetchall()
        ]
        kinds = [classify_host(h) for h in hosts]
        refmap, params = columns_sql(
            "refmap",
            host=("VARCHAR", hosts),
            kind=("VARCHAR", [k for k, _ in kinds]),
            name=("VARCHAR", [n for _, n in kinds]),
        )
        con.execute(
            f"CREATE TABLE memory.main.r{bid} AS SELECT h.raw, h.referrer, h.host, "
            f"refmap.kind, refmap.name FROM {hosts_tbl} AS h LEFT JOIN {refmap} "
            "ON h.host = refmap.host",
            params,
        )
        con.execute(f"DROP TABLE {hosts_tbl}")

    def _guess_own_host(
        self, con: duckdb.DuckDBPyConnection, bid: int, batch_rows: str
    ) -> str | None:
        """The site's own host, when the log does not say it: where its assets are loaded from.

        Browsers send the page as referrer of its stylesheets and images, so the host most
        asset requests name is, with a clear majority, the site itself.
        """
        rows = con.execute(
            f"SELECT r.host, count(*) AS n, sum(count(*)) OVER () AS total "
            f"FROM {batch_rows} AS b JOIN memory.main.r{bid} AS r ON b.referrer = r.raw "
            f"WHERE b.is_asset AND r.host IS NOT NULL "
            f"GROUP BY r.host ORDER BY n DESC LIMIT 1"
        ).fetchall()
        if rows and rows[0][1] >= 20 and rows[0][1] * 2 > rows[0][2]:
            return str(rows[0][0])
        return None

    def _finish_batch(
        self, src: _Source, bid: int, future: Future[_Parsed], nlines: int, consumed: int
    ) -> int:
        """Once a batch is parsed: add up its lines, give its user agents ids, report junk."""
        parsed = future.result()  # the parse's error, if any, is raised here
        self._user_agents(parsed.uas)
        # Each request's user agent id and bot flag, now that uamap holds them all: joined
        # per batch, the hash table is the batch's, not one of every user agent seen.
        self.con.execute(
            f"CREATE TABLE memory.main.t{bid} AS SELECT s.* EXCLUDE (uh), u.ua_id, u.is_bot "
            f"FROM memory.main.s{bid} s JOIN memory.main.uamap u ON s.uh = u.uh"
        )
        self.con.execute(f"DROP TABLE memory.main.s{bid}")
        self.con.execute(f"ALTER TABLE memory.main.t{bid} RENAME TO s{bid}")
        if parsed.own_host and not self._sites_known:
            self.sites.add(parsed.own_host)
            self._sites_known = True
        src.parsed_lines += nlines
        src.parsed_offset += consumed
        counts, days = parsed.counts, parsed.days
        late = {d.isoformat(): n for d, n in days.items() if d.isoformat() in self.closed_days}
        self._pending_days.update(d.isoformat() for d in days)
        self._pending_late.update(late)
        imported = counts[("ok", False)]
        self._staged += imported
        self.requests_parsed += imported
        self._batches.append([bid, imported, src.parsed_lines])

        st = src.stats
        st.lines_read += nlines
        st.imported += imported
        st.already += sum(n for (_, old), n in counts.items() if old)
        st.malformed += counts[("malformed", False)]
        st.nonaccess += sum(
            n for (k, old), n in counts.items() if not old and k in ("nonaccess", "blank", "other")
        )
        st.late += sum(late.values())
        for line_no, why, line in parsed.malformed:
            masked = mask_ips(line)
            if len(st.samples) < self.options.samples:
                st.samples.append((line_no, why, printable(masked)[:300]))
            if self.on_reject:
                self.on_reject(st.name, line_no, why, masked)
        return bid

    def _drop_batches(self, count: int) -> None:
        for bid, _, _ in self._batches[:count]:
            self.con.execute(f"DROP TABLE IF EXISTS memory.main.s{bid}")
            self._ends.pop(bid, None)
        del self._batches[:count]

    # -- committing --------------------------------------------------------------

    def _hand_off(self, src: _Source, limit: int | None = None, complete: bool = False) -> None:
        """Commit staged requests (the first `limit` by line, else all) with the checkpoint.

        A commit of whole row groups is DuckDB's cheap path; requests after the limit
        stay in their batch table for the next commit.
        """
        con = self.con
        if limit:
            # The limit-th uncommitted request: in which batch, then where in it.
            seen, target = 0, self._batches[-1][0]
            for bid, waiting, _ in self._batches:
                if seen + waiting >= limit:
                    target = bid
                    break
                seen += waiting
            (last_line,) = con.execute(
                f"SELECT line_no FROM memory.main.s{target} "
                f"WHERE line_no > {src.lines} "
                f"ORDER BY line_no LIMIT 1 OFFSET {limit - seen - 1}"
            ).fetchall()[0]
            base, before, ends = self._ends[target]
            offset = base + ends[last_line - before - 1]
        else:
            offset, last_line = src.parsed_offset, src.parsed_lines
            if (offset, last_line) == (src.offset, src.lines) and not complete:
                return  # nothing parsed since the last commit
        new_days = sorted(d for d in self._pending_days if d not in self._known_days)
        job = _Commit(
            source_id=src.id,
            name=src.stats.name,
            kind=src.kind,
            info=src.info,
            batches=[bid for bid, _, _ in self._batches],
            first_line=src.lines,
            last_line=last_line,
            requests=limit if limit else self._staged,
            offset=offset,
            lines=last_line,
            before=(src.offset, src.lines) if src.exists else None,
            complete=complete,
            new_uas=list(self._pending_uas),
            new_days=new_days,
            late=dict(self._pending_late),
            sites=tuple(sorted(self.sites)),
        )
        self._committer.commit(job)
        self._known_days.update(new_days)
        self._pending_uas.clear()
        self._pending_days.clear()
        self._pending_late.clear()
        src.exists = True
        src.offset, src.lines = offset, last_line
        # Batches wholly committed go; the next one may keep requests for the next commit.
        done = 0
        for entry in self._batches:
            if entry[2] > last_line:
                entry[1] = con.execute(
                    f"SELECT count(*) FROM memory.main.s{entry[0]} WHERE line_no > {last_line}"
                ).fetchall()[0][0]
                break
            done += 1
        self._drop_batches(done)
        self._staged = sum(entry[1] for entry in self._batches)
        purge_duckdb_memory()

    # -- closing days ------------------------------------------------------------

    def remake_sessions(self) -> None:
        """Make again the sessions of the window the commits marked (see
        `_mark_sessions_dirty`), in one transaction, and clear the mark.

        On one core, like every query of the import: with both, a 1M-line import's
        remake took as long (0.5 s) and peaked ~25 MiB higher, above the parsing. Under
        REMAKE_MEMORY_LIMIT, so that DuckDB evicts the blocks of the file it has read
        instead of keeping them all (a 3M-line import, under 160 MB then: 338 -> 291 MiB
        at its peak); if a bucket needs more (a visitor with a great many pageviews),
        again without it.
        """
        db = self.store.con  # the connection that USEs the file
        try:
            with self._db():
                try:
                    self.con.execute(f"SET memory_limit = '{REMAKE_MEMORY_LIMIT}'")
                    remake_dirty_sessions(db)
                except duckdb.OutOfMemoryException:  # rolled back: the window is still dirty
                    self.con.execute(f"SET memory_limit = '{self.store.memory_limit}'")
                    remake_dirty_sessions(db)
        finally:
            self.con.execute(f"SET memory_limit = '{self.store.memory_limit}'")
            purge_duckdb_memory()

    def close_days(self, now: datetime | None = None) -> list[str]:
        """Destroy the keys of days that ended more than the grace period before the newest
        row (or before `now`, the wall clock, when tailing a live log)."""
        with self._db() as db:
            newest = db.execute("SELECT max(ts) FROM db.requests").fetchall()[0][0]
            if now is not None and (newest is None or now > newest):
                newest = now
            if newest is None:
                return []
            days = closable_days(
                self.keys.days(), newest, tz=self.options.tz, grace=self.options.grace
            )
            if days:
                db.execute(
                    "UPDATE db.day_keys SET closed_at = now()::TIMESTAMP "
                    "WHERE day IN (SELECT unnest($1::DATE[]))",
                    [days],
                )
        # A long run (tail) counts later lines of these days as late, like the next run would.
        self.closed_days.update(days)
        return self.keys.destroy(days)


def parse_failure_message(s: SourceStats) -> str:
    """What to tell the user when most lines of an input did not parse."""
    stored = f"{s.imported:,} stored" if s.imported else "nothing of it stored"
    total = s.malformed + s.imported + s.withheld
    return (
        f"most lines of {printable(s.name)} did not parse as format {s.format!r} "
        f"({s.malformed:,} of {total:,}; {stored}): "
        "pass --format with the log_format from your nginx.conf"
    )


def ingest(
    store: Store,
    inputs: Sequence[Input],
    options: ImportOptions | None = None,
    *,
    on_progress: ProgressFn | None = None,
    on_reject: RejectFn | None = None,
    lock_timeout: float | None = None,
    stop: threading.Event | None = None,
) -> IngestStats:
    """Import log files and streams into the store, exactly once. Setting `stop` (from a
    signal handler) ends the run early: what was read is stored, `interrupted` is set.

    Example:
        >>> import pathlib, tempfile
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> line = '203.0.113.9 - - [01/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-"'
        >>> _ = (tmp / "access.log").write_text(line + "\\n")
        >>> with Store(tmp / "db.duckdb") as store:
        ...     ingest(store, [tmp / "access.log"]).imported
        1
    """
    opts = options or ImportOptions()
    for inp in inputs:
        if isinstance(inp, Path) and not inp.exists():
            raise SourceError(f"{inp}: no such file")
    with store.writer_lock(lock_timeout):
        return Importer(store, opts, on_progress=on_progress, on_reject=on_reject, stop=stop).run(
            inputs
        )

"""The batch pipeline of an import: blocks of lines in, parsed into batch tables on two
threads, their user agents given ids, staged, and committed in whole row groups with the
checkpoint of the input they came from.

`Importer` decides what is read and when it is stored; `Pipeline` does the storing, and
holds what the run has learnt so far (days seen, the site's hosts, the last format).
"""

from __future__ import annotations

import collections
import json
from array import array
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import duckdb

from ..enrich import normalise_host
from ..formats import PRESETS, LogFormat, StreamPrefix, compile_format, parse_query, printable
from ..formats.detect import SAMPLE_LINES, detect_format, detect_prefix
from ..keys import DayKeys
from ..privacy import mask_ips
from ..store import Store, site_hosts
from ._memory import M_MMAP_THRESHOLD, glibc, purge_duckdb_memory
from .agents import AgentIds
from .batch import LINES, Addresses, Batch, BatchParser, Parsed, Replay, line_ends, own_host
from .checkpoints import Source
from .commit import Commit, Committer
from .options import ImportOptions, RejectFn
from .staging import Staging, Waiting

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor


class Pipeline:
    """Blocks to committed row groups, for one run. Not thread-safe: one thread feeds it
    (its parsing threads share only `Addresses`, which has its own lock)."""

    def __init__(
        self,
        store: Store,
        options: ImportOptions,
        keys: DayKeys,
        addresses: Addresses,
        committer: Committer,
        *,
        on_reject: RejectFn | None = None,
    ) -> None:
        self.store, self.options, self.keys = store, options, keys
        self.on_reject = on_reject
        self._addresses = addresses
        self._committer = committer
        self.forced_format = compile_format(options.format) if options.format else None
        self._last_detection: tuple[LogFormat, StreamPrefix] | None = None
        self._pool: ThreadPoolExecutor | None = None  # made when a first block comes
        self._bid = 0
        self.requests_parsed = 0  # new requests parsed by this run, all inputs
        self._pending_days: set[str] = set()
        self._pending_late: Counter[str] = Counter()
        #: batches handed to the parsers: (content offset and lines before it, line ends)
        self._queued: dict[int, tuple[int, int, array[int]]] = {}
        self.connect()
        self.agents = AgentIds(self.con, self.db, self._committer)
        self.agents.load(self.con)
        with self.db() as db:
            (self.next_source,) = db.execute(
                "SELECT coalesce(max(id), 0) + 1 FROM db.sources"
            ).fetchall()[0]
            days = db.execute(
                "SELECT strftime(day, '%Y-%m-%d'), closed_at IS NOT NULL FROM db.day_keys"
            ).fetchall()
            stored_sites = site_hosts(db)
            votes = db.execute("SELECT value FROM db.meta WHERE key = 'site_votes'").fetchall()
            detected = db.execute(
                "SELECT value FROM db.meta WHERE key = 'detected_format'"
            ).fetchall()
        self._known_days = {d for d, _ in days}
        self.closed_days = {d for d, closed in days if closed}
        # The site's own hosts: given, or found by an earlier import.
        self.sites = {normalise_host(h) for h in options.sites} | set(stored_sites)
        self._sites_known = bool(self.sites)
        # The preset earlier imports detected: tried first (one scoring, not one per preset).
        if detected and detected[0][0] in PRESETS and self.forced_format is None:
            self._last_detection = (compile_format(detected[0][0]), StreamPrefix())
        self._detected = self._last_detection
        #: asset requests per referrer host, over this run and earlier ones (`own_host`)
        self.votes: Counter[str] = Counter(json.loads(votes[0][0]) if votes else {})

    def connect(self) -> None:
        """This thread's connection to the store's in-memory instance (it commits), and the
        parsers' (one per parsing thread)."""
        self.con = self.store.cursor()
        # Every query on one core: two threads parse batches side by side, and queries
        # spread over both cores would only fight them.
        self.con.execute("SET threads = 1")
        self.staging = Staging(self.con)
        self.parser = BatchParser(
            self.store,
            self.options,
            self.keys,
            self._addresses,
            all_malformed=self.on_reject is not None,
        )

    @property
    def idle(self) -> bool:
        """Nothing waits to be committed: requests or user agents."""
        return not self.staging.batches and not self.agents.pending

    def renew(self) -> None:
        """Go on with a fresh in-memory instance, parsing threads and caches (see
        `Importer.renew`); only when `idle`."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self.parser.close()
        self.con.close()
        self.store.renew()
        self.connect()
        self.agents.load(self.con)
        self._addresses.forget()
        glibc("malloc_trim", 0)

    def close(self) -> None:
        """Let go of the parsing threads and the in-memory tables."""
        if self._pool is not None:
            self._pool.shutdown()
        self.con.execute("DROP TABLE IF EXISTS memory.main.uamap")
        self.parser.close()
        self.con.close()

    @contextmanager
    def db(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's connection, with the database attached (as `db`) meanwhile."""
        self.store.attach()
        try:
            yield self.con
        finally:
            self.store.detach()

    def save_learnt(self) -> None:
        """Keep what this run learnt for the next: the site's host while it is not known
        (small logs imported one by one add up to it), and the preset files were in."""
        with self.db() as db:
            if not self._sites_known and self.votes:
                db.execute(
                    "INSERT OR REPLACE INTO db.meta VALUES ('site_votes', ?)",
                    [json.dumps(dict(self.votes.most_common(20)))],
                )
            last = self._last_detection
            if last is not None and last != self._detected and last[0].name in PRESETS:
                db.execute(
                    "INSERT OR REPLACE INTO db.meta VALUES ('detected_format', ?)", [last[0].name]
                )

    def reset(self) -> None:
        """After one input: drop whatever is still staged, release the store."""
        self.staging.drop()
        self._queued.clear()
        self._pending_days.clear()
        self._pending_late.clear()
        self.agents.pending.clear()
        self._committer.release()

    def _prepare(self, src: Source, data: bytes | memoryview) -> None:
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
        src.sql = parse_query(src.fmt, LINES, prefix=src.prefix, service=self.options.service)

    def parsed(
        self,
        src: Source,
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
        inflight: collections.deque[tuple[int, Future[Parsed], int, int]] = collections.deque()
        try:
            for data, consumed in blocks:
                if src.fmt is None:
                    self._prepare(src, data)
                ends = line_ends(data, consumed)
                self._bid += 1
                # In a box that the parsing thread empties: the block is let go as soon
                # as DuckDB holds its lines, not when the whole batch is done.
                batch = Batch(
                    self._bid,
                    [data],
                    src.queued_lines,
                    src.sql,
                    replay=Replay(src.id, src.prior_lines, src.matched, self.db)
                    if src.kind == "stream" and src.prior_lines
                    else None,
                    guess_host=not self._sites_known and src.kind == "file",
                    check_clients=not src.clients_checked,
                )
                src.clients_checked = True
                del data
                # A stream, or a file of one block (a day of a small site): on this thread,
                # without a second thread and connection to start and feed.
                small = src.info is not None and src.info.size <= self.options.batch_bytes
                if src.kind == "stream" or (small and not inflight):
                    future = _run_now(self.parser.parse, batch)
                else:
                    future = self._parse_pool().submit(self.parser.parse, batch)
                self._queued[self._bid] = (src.queued_offset, src.queued_lines, ends)
                src.queued_lines += len(ends)
                src.queued_offset += consumed
                inflight.append((self._bid, future, len(ends), consumed))
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

            glibc("mallopt", M_MMAP_THRESHOLD, 128 << 10)
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="logalyse-parse")
        return self._pool

    def _finish_batch(
        self, src: Source, bid: int, future: Future[Parsed], nlines: int, consumed: int
    ) -> int:
        """Once a batch is parsed: give its user agents ids, add up its lines, report junk."""
        parsed = future.result()  # the parse's error, if any, is raised here
        self.agents.add(parsed.uas)
        # Each request's user agent id and bot flag, now that uamap holds them all: joined
        # per batch, the hash table is the batch's, not one of every user agent seen.
        self.con.execute(
            f"CREATE TABLE memory.main.t{bid} AS SELECT s.* EXCLUDE (uh), u.ua_id, u.is_bot "
            f"FROM memory.main.s{bid} s JOIN memory.main.uamap u ON s.uh = u.uh"
        )
        self.con.execute(f"DROP TABLE memory.main.s{bid}")
        self.con.execute(f"ALTER TABLE memory.main.t{bid} RENAME TO s{bid}")
        if parsed.one_private > src.stats.one_private:
            src.stats.one_private = parsed.one_private
        if parsed.asset_hosts and not self._sites_known:
            self.votes.update(parsed.asset_hosts)
            host = own_host(self.votes)
            if host:
                self.sites.add(host)
                self._sites_known = True
        src.parsed_lines += nlines
        src.parsed_offset += consumed
        counts, days = parsed.counts, parsed.days
        late = {d.isoformat(): n for d, n in days.items() if d.isoformat() in self.closed_days}
        self._pending_days.update(d.isoformat() for d in days)
        self._pending_late.update(late)
        imported = counts[("ok", False)]
        self.requests_parsed += imported
        base_offset, base_lines, ends = self._queued.pop(bid)
        self.staging.add(Waiting(bid, imported, src.parsed_lines, base_offset, base_lines, ends))

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

    def hand_off(self, src: Source, limit: int | None = None, complete: bool = False) -> None:
        """Commit staged requests (the first `limit` by line, else all) with the checkpoint.

        A commit of whole row groups is DuckDB's cheap path; requests after the limit
        stay in their batch table for the next commit.
        """
        if limit:
            last_line, offset = self.staging.cut(limit, src.lines)
        else:
            offset, last_line = src.parsed_offset, src.parsed_lines
            if (offset, last_line) == (src.offset, src.lines) and not complete:
                return  # nothing parsed since the last commit
        new_days = sorted(d for d in self._pending_days if d not in self._known_days)
        job = Commit(
            source_id=src.id,
            name=src.stats.name,
            kind=src.kind,
            info=src.info,
            batches=[w.bid for w in self.staging.batches],
            first_line=src.lines,
            last_line=last_line,
            requests=limit if limit else self.staging.requests,
            offset=offset,
            lines=last_line,
            before=(src.offset, src.lines) if src.exists else None,
            complete=complete,
            new_uas=self.agents.take_pending(),
            new_days=new_days,
            late=dict(self._pending_late),
            sites=tuple(sorted(self.sites)),
        )
        self._committer.commit(job)
        self._known_days.update(new_days)
        self._pending_days.clear()
        self._pending_late.clear()
        src.exists = True
        src.offset, src.lines = offset, last_line
        self.staging.committed(last_line)
        purge_duckdb_memory()


def _run_now(fn: Callable[..., Parsed], *args: Any) -> Future[Parsed]:
    """Call `fn` on this thread, as a future that is already done."""
    from concurrent.futures import Future

    future: Future[Parsed] = Future()
    try:
        future.set_result(fn(*args))
    except Exception as e:  # raised again by future.result(), like a pool's
        future.set_exception(e)
    return future

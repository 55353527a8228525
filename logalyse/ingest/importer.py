"""The import run: inputs in, batches parsed on two threads, row groups committed with
their checkpoints, sessions and day keys looked after at the end.

Files are read here; a stream is pushed in (`open_stream`, then `feed` each block), so
that `tail` drives the loop and decides when sessions are remade and days closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..enrich import GeoIP
from ..enrich.behaviour import mark_machines
from ..formats import printable
from ..model import IngestStats, SourceStats
from ..privacy import closable_days
from ..sources import (
    LineBlocks,
    file_info,
    head,
    is_finished,
    oldest_first,
    open_content,
    skip_bytes,
    stream_reader,
)
from ..store import Store, dirty_window, remake_dirty_sessions
from . import options as limits  # read at call time: tests make them small
from ._memory import purge_duckdb_memory
from .batch import Addresses
from .checkpoints import Source, file_source, stream_source
from .commit import Committer
from .options import ImportOptions, Input, ProgressFn, RejectFn, StreamInput
from .pipeline import Pipeline

if TYPE_CHECKING:
    pass


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
        hold_seconds: float | None = None,
        withhold: str = "all",
        stop: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.options = options
        self.on_progress = on_progress
        self.on_reject = on_reject
        #: "all": a mostly malformed input is held back; "new": only one never stored from.
        self.withhold = withhold
        #: Set (SIGTERM, Ctrl-C): store what is parsed, read no further, skip what is left.
        self.stop = stop or threading.Event()
        self.keys = store.day_keys()
        self.stats = IngestStats()
        self.geo = GeoIP(options.geoip, city=options.geoip_city) if options.geoip else None
        self.pipe = Pipeline(
            store,
            options,
            self.keys,
            Addresses(self.geo),
            Committer(store, limits.HOLD_SECONDS if hold_seconds is None else hold_seconds),
            on_reject=on_reject,
        )

    @property
    def requests_parsed(self) -> int:
        """New requests parsed by this run, all inputs."""
        return self.pipe.requests_parsed

    def renew(self) -> None:
        """Between units of work of a long run (tail): let go of the in-memory DuckDB
        instance, the parsing threads and the caches, which grow with time, and go on
        with fresh ones. What the run knows of its sources stays. Does nothing while
        requests or user agents wait to be committed."""
        if self.pipe.idle:
            self.pipe.renew()

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
            self.pipe.save_learnt()
            if self.geo is not None and self.stats.imported:
                self._remember_geoip(self.geo.kind)
            if not self.stats.interrupted:
                self.remake_sessions()
                self.stats.days_closed = self.close_days()
        finally:
            self.close()
        self.stats.seconds = time.monotonic() - started
        return self.stats

    def _remember_geoip(self, kind: str) -> None:
        """Which database gave the countries: reports credit it when its licence asks."""
        with self.pipe.db() as db:
            db.execute("INSERT OR REPLACE INTO db.meta VALUES ('geoip_kind', ?)", [kind])

    def close(self) -> None:
        """Let go of the parsing threads, the GeoIP reader and the in-memory tables."""
        if self.geo is not None:
            self.geo.close()
        self.pipe.close()

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
        with self.pipe.db() as db:
            src = file_source(db, info, head(path), stats, self.pipe.next_source)
        self.pipe.next_source += 0 if src.exists else 1
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
        with open_content(path) as reader, self._source():
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
            row_group = limits.ROW_GROUP_ROWS
            with closing(self.pipe.parsed(src, iter(blocks), progress)) as parsed:
                for _ in parsed:
                    if self.stop.is_set():
                        break  # what is parsed is stored below
                    staged = self.pipe.staging.requests
                    if staged < row_group:
                        continue
                    if not self._withholding(src):
                        self.pipe.hand_off(src, limit=staged // row_group * row_group)
                    elif staged >= row_group:
                        break  # enough to be sure: this is the wrong format
            stats.unterminated = 1 if blocks.left else 0
            if self._withholding(src):
                self._withhold(src)
            else:
                self.pipe.hand_off(src, complete=info.compressed and ended())
        return stats

    def import_stream(self, inp: StreamInput) -> SourceStats:
        """Import a stream (stdin) to its end, skipping what an earlier run of the same name
        stored. An unterminated last line is not stored: a stream cut mid-line ends with
        half a line, and the whole line comes with the next replay."""
        blocks = LineBlocks(stream_reader(inp.stream), self.options.batch_bytes, take_partial=False)
        stream = self.open_stream(inp.label)
        for data, consumed in blocks:
            if not stream.feed(data, consumed) or self.stop.is_set():
                break
        stats = stream.close()
        stats.unterminated = 1 if blocks.left else 0
        return stats

    def open_stream(self, label: str) -> StreamFeed:
        """A stream to push blocks of whole lines into (`feed`), each stored before `feed`
        returns; `close` when it ends. `tail -` pushes what arrives every few seconds."""
        return StreamFeed(self, label)

    # -- withholding a mostly malformed input --------------------------------------

    def _withholding(self, src: Source) -> bool:
        """Whether the input's requests are held back from the store: most of its lines so
        far did not parse, so the format is almost surely wrong, and a checkpoint now would
        make a rerun with the right `--log-format` skip them (`withhold`: "new" holds back only
        inputs never stored from before, as a live tail wants)."""
        if not src.stats.parse_failures_dominate:
            return False
        return self.withhold == "all" or not src.known

    def _withhold(self, src: Source) -> None:
        """Store nothing of a mostly malformed input: its checkpoint stays where it was."""
        st = src.stats
        st.withheld, st.imported, st.late = st.imported, 0, 0
        st.note = "nothing stored: most lines did not parse"

    @contextmanager
    def _source(self) -> Iterator[None]:
        """Around one input: drop whatever is still staged and release the store at the end."""
        try:
            yield
        finally:
            self.pipe.reset()

    # -- batches -------------------------------------------------------------------

    # -- sessions and days ---------------------------------------------------------

    def _mark_machines(self, db: Any, window: tuple[datetime, datetime] | None) -> None:
        """Machines with a browser's user agent, in the window (`enrich.behaviour`)."""
        if window is not None:
            for reason, n in mark_machines(db, *window, self.options.behaviour).items():
                self.stats.machines[reason] = self.stats.machines.get(reason, 0) + n

    def remake_sessions(self) -> None:
        """Make again the sessions of the window the commits marked dirty, in one
        transaction, and clear the mark; before, mark the machines of that window
        (`enrich.behaviour`).

        On one core, like every query of the import, and under REMAKE_MEMORY_LIMIT, so that
        DuckDB evicts the blocks of the file it has read instead of keeping them all; if a
        bucket needs more (a visitor with a great many pageviews), again without it.
        """
        db = self.store.con  # the connection that USEs the file
        try:
            with self.pipe.db():
                window = dirty_window(db)

                def remake() -> None:  # run again if it fails: rolled back, still dirty
                    self._mark_machines(db, window)
                    remake_dirty_sessions(db)

                self.store.under_memory_limit(limits.REMAKE_MEMORY_LIMIT, remake)
        finally:
            purge_duckdb_memory()

    def close_days(self, now: datetime | None = None) -> list[str]:
        """Destroy the keys of days that ended more than the grace period before the newest
        row (or before `now`, the wall clock, when tailing a live log)."""
        with self.pipe.db() as db:
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
        self.pipe.closed_days.update(days)
        return self.keys.destroy(days)


class StreamFeed:
    """A stream being imported, block by block, as its reader pushes them in."""

    def __init__(self, importer: Importer, label: str) -> None:
        self.importer = importer
        self.stats = SourceStats(name=label, kind="stream")
        self._src: Source | None = None
        self._source: Any = None  # the importer's per-input context, once a block came
        self.gave_up = False  # most lines did not parse: stored nothing, reads no more

    def feed(self, data: bytes | memoryview, consumed: int) -> bool:
        """Parse and store a block of whole lines; False once the stream is given up on."""
        imp = self.importer
        if self.gave_up:
            return False
        if self._src is None:
            with imp.pipe.db() as db:
                self._src = stream_source(db, data, self.stats, imp.options, imp.pipe.next_source)
            imp.pipe.next_source += 0 if self._src.exists else 1
            self._source = imp._source()
            self._source.__enter__()
        src = self._src

        def progress() -> None:
            if imp.on_progress:
                imp.on_progress(self.stats.name, src.parsed_offset, 0)

        with closing(imp.pipe.parsed(src, iter([(data, consumed)]), progress, ahead=0)) as parsed:
            for _ in parsed:
                if not imp._withholding(src):
                    imp.pipe.hand_off(src)
                elif imp.withhold == "new" or imp.pipe.staging.requests >= limits.ROW_GROUP_ROWS:
                    self.gave_up = True  # a live stream cannot wait: give up at once
        return not self.gave_up

    def close(self) -> SourceStats:
        """The stream ended (or the run stops): what it stored, and whether it was held back."""
        if self._src is not None:
            if self.importer._withholding(self._src):
                self.importer._withhold(self._src)
            self._source.__exit__(None, None, None)
            self._src = None
        return self.stats


def parse_failure_message(s: SourceStats) -> str:
    """What to tell the user when most lines of an input did not parse."""
    stored = f"{s.imported:,} stored" if s.imported else "nothing of it stored"
    total = s.malformed + s.imported + s.withheld
    return (
        f"most lines of {printable(s.name)} did not parse as format {s.format!r} "
        f"({s.malformed:,} of {total:,}; {stored}): "
        "pass --log-format with the log_format from your nginx.conf"
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
    from ..errors import SourceError

    opts = options or ImportOptions()
    for inp in inputs:
        if isinstance(inp, Path) and not inp.exists():
            raise SourceError(f"{inp}: no such file")
    with store.writer_lock(lock_timeout):
        return Importer(store, opts, on_progress=on_progress, on_reject=on_reject, stop=stop).run(
            inputs
        )

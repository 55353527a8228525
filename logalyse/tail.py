"""Follow a live log: a file through logrotate (`tail -F`), or a stream such as
`docker compose logs -f`, storing what arrives every few seconds.

Tail shares the import's checkpoints, so `import` after `tail` (or the reverse) never
counts a line twice. Between flushes the database file is let go, so reports from other
shells can open it. A stop request (SIGTERM, SIGINT: `stop` is set) flushes what has
arrived and returns.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from .errors import MostlyMalformedError
from .ingest import Importer, ImportOptions, RejectFn, parse_failure_message
from .model import IngestStats, SourceStats
from .sources import FINGERPRINT_BYTES, MAX_LINE_BYTES, head
from .store import Store

DEFAULT_EVERY = 5.0
#: A rotated file is read until it has not grown for this long (nginx reopening its logs).
RETIRE_SECONDS = 2.0
#: What one read from a stream may take at most.
_READ_BYTES = 1 << 16
#: How often a tail starts afresh with a new in-memory instance and empty caches, so
#: that its memory stays flat however long it runs (Importer.renew).
RENEW_SECONDS = 60.0

FlushFn = Callable[[IngestStats], None]


@dataclass
class TailStats(IngestStats):
    """Totals of a tail run, kept per input name (not per flush: memory stays flat)."""

    flushes: int = 0
    rotations: int = 0
    renewals: int = 0  # fresh in-memory instances (see Importer.renew)
    _by_name: dict[str, SourceStats] = field(default_factory=dict, repr=False)

    def add(self, s: SourceStats) -> None:
        new = s.name not in self._by_name
        if new:
            self._by_name[s.name] = SourceStats(name=s.name, format=s.format)
            self.sources.append(self._by_name[s.name])
        total = self._by_name[s.name]
        for attr in ("lines_read", "imported", "malformed", "nonaccess", "late", "withheld"):
            setattr(total, attr, getattr(total, attr) + getattr(s, attr))
        # Each pass over a file counts the lines before its checkpoint as read and already
        # imported: of those, only what the first pass over each input skipped is counted.
        if s.kind == "file":
            total.lines_read -= s.already
        if new or s.kind == "stream":
            total.already += s.already
            total.lines_read += s.already if s.kind == "file" else 0
        total.format = s.format or total.format
        room = 5 - len(total.samples)
        if room > 0:
            total.samples.extend(s.samples[:room])


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class _Followed:
    """The file being followed: its identity and first bytes, and an open descriptor that
    keeps it readable after a rename or delete."""

    path: Path
    dev: int
    ino: int
    first: bytes
    fd: int

    @classmethod
    def open(cls, path: Path) -> _Followed | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        st = os.fstat(fd)
        with os.fdopen(os.dup(fd), "rb") as f:
            first = f.read(FINGERPRINT_BYTES)
        return cls(path, st.st_dev, st.st_ino, first, fd)

    def close(self) -> None:
        os.close(self.fd)

    def still_at_path(self) -> bool:
        """Whether `path` is still this file, grown or unchanged (not rotated, replaced
        or truncated). Learns more of the first bytes while the file is short."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            return False
        now = head(self.path)
        if not now.startswith(self.first):
            return False  # truncated (copytruncate), then written again or not
        self.first = now
        return True


@dataclass
class _Retiring:
    """A rotated file still read until it stops growing."""

    followed: _Followed
    size: int | None = -1
    stable_since: float = 0.0


class Tail:
    """Follows one input into the store (`follow_file`, `follow_stream`) until `stop` is
    set or a stream ends."""

    def __init__(
        self,
        store: Store,
        options: ImportOptions,
        *,
        every: float = DEFAULT_EVERY,
        stop: threading.Event | None = None,
        on_flush: FlushFn | None = None,
        on_reject: RejectFn | None = None,
        wall_clock: Callable[[], datetime] = _utcnow,
        renew_seconds: float = RENEW_SECONDS,
    ) -> None:
        self.store = store
        self.options = options
        self.every = every
        self.stop = stop or threading.Event()
        self.on_flush = on_flush
        self.on_reject = on_reject
        self.wall_clock = wall_clock
        self.stats = TailStats()
        self._parsed_before = 0  # Importer.requests_parsed at the last flush
        self.renew_seconds = renew_seconds
        self._renewed_at = time.monotonic()
        self._unterminated = 0  # a stream's last line, unterminated when it ended

    def _importer(self) -> Importer:
        # A live log must keep flowing: only an input never stored from before is held
        # back when most of its lines do not parse (see Importer._withholding).
        return Importer(
            self.store, self.options, on_reject=self.on_reject, hold_seconds=0, withhold="new"
        )

    # -- files -------------------------------------------------------------------

    def follow_file(self, path: Path) -> TailStats:
        """Follow `path` like `tail -F` until stopped."""
        imp = self._importer()
        followed: _Followed | None = None
        retiring: list[_Retiring] = []
        try:
            while True:
                stopping = self.stop.is_set()
                followed = self._file_tick(imp, path, followed, retiring)
                self._flushed(imp)
                if stopping:
                    break
                self.stop.wait(self.every)
        finally:
            for f in [followed, *(r.followed for r in retiring)]:
                if f is not None:
                    f.close()
            imp.close()
        return self.stats

    def _file_tick(
        self, imp: Importer, path: Path, followed: _Followed | None, retiring: list[_Retiring]
    ) -> _Followed | None:
        if followed is not None and not followed.still_at_path():
            retiring.append(_Retiring(followed))
            followed = None
            self.stats.rotations += 1
        # A rotated file may still be written to until nginx reopens its logs: keep
        # reading it until it stops growing (and the new file exists).
        for r in list(retiring):
            size = self._drain(imp, r.followed)
            now = time.monotonic()
            if size != r.size:
                r.size, r.stable_since = size, now
            elif now - r.stable_since >= RETIRE_SECONDS and path.exists():
                self._drain(imp, r.followed, finished=True)  # nginx has let go of it
                r.followed.close()
                retiring.remove(r)
            elif self.stop.is_set():
                r.followed.close()
                retiring.remove(r)
        if followed is None:
            followed = _Followed.open(path)
            if followed is None:
                return None  # not there (yet): wait for it
        self.stats.add(imp.import_file(path))
        return followed

    def _drain(self, imp: Importer, old: _Followed, finished: bool = False) -> int | None:
        """Import the rest of a file that logrotate moved away (create: renamed; or
        copytruncate: copied, then truncated), found by inode or first bytes; its
        checkpoint is found by its first bytes, wherever it is now. Returns its size."""
        siblings = sorted(
            p
            for p in old.path.parent.glob(old.path.name + "?*")
            if p.is_file() and not p.name.endswith(".lock")
        )
        same_inode = [p for p in siblings if _identity(p) == (old.dev, old.ino)]
        same_start = sorted(
            (p for p in siblings if old.first and head(p).startswith(old.first)),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        found = same_inode or same_start[:1]
        if not found:
            # Moved elsewhere or deleted: the descriptor still reads it (Linux, /proc).
            proc = Path(f"/proc/self/fd/{old.fd}")
            if not proc.exists():
                return None
            found = [proc]
        self.stats.add(imp.import_file(found[0], finished=finished))
        try:
            return found[0].stat().st_size
        except OSError:
            return None

    # -- streams -----------------------------------------------------------------

    def follow_stream(self, stream: BinaryIO, label: str = "stdin") -> TailStats:
        """Read a stream until it ends (or stop), storing what came every `every` seconds."""
        imp = self._importer()
        feed = imp.open_stream(label)
        try:
            # This loop drives the import: each block is stored before the next is read,
            # and sessions, days and a fresh instance are seen to between blocks.
            for block, consumed in self._blocks(stream):
                if block and not feed.feed(block, consumed):
                    break  # given up on: most of its lines do not parse
                self._flushed(imp)  # also when nothing came: a quiet night closes yesterday
            stats = feed.close()
            stats.unterminated = self._unterminated
            self.stats.add(stats)
            self._check_format()
        finally:
            imp.close()
        return self.stats

    def _blocks(self, stream: BinaryIO) -> Iterator[tuple[bytes, int]]:
        """Blocks of whole lines: what arrived in each `every` seconds (or a batch's worth);
        an empty block when the time came and nothing did.

        As in a file (`sources.LineBlocks`), a stream whose first chunk has `\\r` but no
        `\\n` ends its lines with `\\r`, and a line longer than MAX_LINE_BYTES is cut to
        one line of that length. An unterminated last line is not stored (`_unterminated`):
        a stream cut mid-line ends with half a line, and the whole line comes with a replay.
        """
        chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=256)

        def read() -> None:
            read1 = getattr(stream, "read1", stream.read)
            try:
                while True:
                    data = read1(_READ_BYTES)
                    if not data:
                        break
                    chunks.put(data)
            finally:
                chunks.put(None)

        threading.Thread(target=read, name="logalyse-tail-read", daemon=True).start()
        pending = bytearray()
        eof = False
        cr_only: bool | None = None  # decided by the first chunk
        skipping = False  # dropping the rest of an overlong line
        skipped = 0  # bytes of it dropped, counted with the next block
        deadline = time.monotonic() + self.every
        while not eof:
            # At a stop, everything already read off the stream is taken: it arrived. That
            # is what is queued, and a chunk the reader has read but not queued yet (it
            # waits for the interpreter's lock): each get waits a little for it. A stop
            # that comes during a pass is seen at the next, after this drain.
            stopping = self.stop.is_set()
            for n in range(chunks.qsize() + 1 if stopping else 1):
                try:
                    data = chunks.get(timeout=0.1 if n == 0 or stopping else 0)
                except queue.Empty:
                    break
                if data is None:
                    eof = True
                    break
                if cr_only is None:
                    cr_only = b"\n" not in data and b"\r" in data
                pending += data.replace(b"\r", b"\n") if cr_only else data
            if skipping:  # the rest of an overlong line, up to its end
                end = pending.find(b"\n")
                drop = len(pending) if end < 0 else end + 1
                skipped += drop
                del pending[:drop]
                skipping = end < 0
            due = time.monotonic() >= deadline or stopping
            if eof or len(pending) >= self.options.batch_bytes or due:
                cut = pending.rfind(b"\n") + 1
                if cut:
                    block = bytes(pending[:cut])
                    del pending[:cut]
                    yield block, cut + skipped  # resumed once the block is stored
                    skipped = 0
                elif len(pending) >= MAX_LINE_BYTES and not skipping:
                    yield bytes(pending[:MAX_LINE_BYTES]) + b"\n", len(pending) + skipped
                    skipping, skipped, pending = True, 0, bytearray()
                else:
                    yield b"", 0
                deadline = time.monotonic() + self.every
                if stopping:
                    break  # an unterminated line at a stop is not a whole line: dropped
        self._unterminated = 1 if pending or skipping else 0

    # -- after each flush ----------------------------------------------------------

    def _check_format(self) -> None:
        """Stop when an input new to the store was held back: most of its lines did not
        parse, so tail would only go on reading it without storing anything."""
        for s in self.stats.sources:
            if s.withheld:
                raise MostlyMalformedError(parse_failure_message(s))

    def _flushed(self, imp: Importer) -> None:
        self._check_format()
        self.stats.flushes += 1
        # Days end by the data while lines come (a replayed history must not have its
        # keys changed under it at every flush), and by the clock when none came: a quiet
        # night still closes yesterday.
        idle = imp.requests_parsed == self._parsed_before
        self._parsed_before = imp.requests_parsed
        now = self.wall_clock() if idle else None
        imp.remake_sessions()
        self.stats.days_closed += imp.close_days(now=now)
        if time.monotonic() - self._renewed_at >= self.renew_seconds:
            imp.renew()
            self.stats.renewals += 1
            self._renewed_at = time.monotonic()
        if self.on_flush:
            self.on_flush(self.stats)


def _identity(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def tail(
    store: Store,
    target: Path | BinaryIO,
    options: ImportOptions | None = None,
    *,
    every: float = DEFAULT_EVERY,
    stop: threading.Event | None = None,
    on_flush: FlushFn | None = None,
    on_reject: RejectFn | None = None,
    label: str = "stdin",
    lock_timeout: float | None = None,
    renew_seconds: float = RENEW_SECONDS,
) -> TailStats:
    """Follow a log file (through rotations) or a stream into the store until `stop` is
    set or the stream ends. Holds the writer lock throughout, not the database.

    Example:
        >>> import pathlib, tempfile, threading
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> line = '203.0.113.9 - - [01/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-"'
        >>> _ = (tmp / "access.log").write_text(line + "\\n")
        >>> stop = threading.Event(); stop.set()  # one pass, then stop
        >>> with Store(tmp / "db.duckdb") as store:
        ...     tail(store, tmp / "access.log", stop=stop).imported
        1
    """
    t = Tail(
        store,
        options or ImportOptions(),
        every=every,
        stop=stop,
        on_flush=on_flush,
        on_reject=on_reject,
        renew_seconds=renew_seconds,
    )
    with store.writer_lock(lock_timeout, nothing="nothing was stored"):
        if isinstance(target, Path):
            return t.follow_file(target)
        return t.follow_stream(target, label)

"""Inputs: log files (plain or gzip, rotated), and streams such as stdin.

This module reads bytes and knows file identity; it never parses a line. A file is
recognised by a fingerprint of its first bytes (decompressed), so `access.log`
renamed to `access.log.1`, then compressed to `access.log.2.gz`, is the same source.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import stat
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from .errors import SourceError

#: Bytes of content that identify a file.
FINGERPRINT_BYTES = 1024
#: A "line" longer than this without a newline is cut (and will not parse).
MAX_LINE_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"

_ROTATION_RE = re.compile(r"\.(\d+)(?:\.gz)?$")
#: Names logrotate gives: access.log.1, access.log.2.gz, access.log-20240506 (dateext).
_ROTATED_RE = re.compile(r"(?:\.\d+|[-._]\d{8}(?:\d{2})?)(?:\.gz)?$")
#: A rotated file not written to for this long is finished: nginx reopened its logs long
#: ago, so an unterminated last line in it will never end (nginx died mid-write).
ROTATED_IDLE_SECONDS = 60.0
#: Any file not written to for this long is finished (an archived log, a download): no
#: writer pauses mid-line for an hour.
IDLE_SECONDS = 3600.0


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class FileInfo:
    """What `stat` and the first bytes say about a log file."""

    path: Path
    device: int
    inode: int
    size: int
    mtime: float
    compressed: bool
    fingerprint: str
    fp_len: int


def _open_raw(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except IsADirectoryError as e:
        raise SourceError(f"{path} is a directory: give the log files in it") from e
    except FileNotFoundError as e:
        raise SourceError(f"{path}: no such file") from e
    except PermissionError as e:
        raise SourceError(
            f"{path}: permission denied (nginx logs are often readable by group adm only)"
        ) from e
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror})") from e


def is_gzip(path: Path) -> bool:
    with _open_raw(path) as f:
        return f.read(2) == GZIP_MAGIC


def open_content(path: Path) -> BinaryIO:
    """Open a log file for reading its content, decompressing gzip transparently."""
    raw = _open_raw(path)
    first = raw.read(2)
    if first == GZIP_MAGIC:
        # Not GzipFile: it raises on a truncated file and loses the block it was reading.
        return GunzipStream(raw, first)  # type: ignore[return-value]
    raw.seek(0)
    return raw


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def head(path: Path, length: int = FINGERPRINT_BYTES) -> bytes:
    """The first `length` bytes of a file's (decompressed) content."""
    with open_content(path) as f:
        try:
            return f.read(length)
        except (EOFError, OSError, zlib.error):
            return b""  # a truncated or corrupt gzip: nothing readable


def file_info(path: Path) -> FileInfo:
    """Stat a log file and fingerprint its first bytes."""
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise SourceError(f"{path}: no such file") from e
    except PermissionError as e:
        raise SourceError(f"{path}: permission denied") from e
    if stat.S_ISDIR(st.st_mode):
        raise SourceError(f"{path} is a directory: give the log files in it")
    first = head(path)
    return FileInfo(
        path=path,
        device=st.st_dev,
        inode=st.st_ino,
        size=st.st_size,
        mtime=st.st_mtime,
        compressed=is_gzip(path),
        fingerprint=content_hash(first),
        fp_len=len(first),
    )


def rotation_number(path: Path) -> int:
    """`access.log.3.gz` -> 3, `access.log` -> 0."""
    m = _ROTATION_RE.search(path.name)
    return int(m.group(1)) if m else 0


def is_finished(path: Path, now: float | None = None) -> bool:
    """Whether a plain log file will not be written to again: it has not changed for
    IDLE_SECONDS, or for ROTATED_IDLE_SECONDS if it has a rotated name.

    Example:
        >>> is_finished(Path("no-such.log"))
        False
    """
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return False
    idle = (time.time() if now is None else now) - mtime
    return idle >= IDLE_SECONDS or (
        idle >= ROTATED_IDLE_SECONDS and _ROTATED_RE.search(path.name) is not None
    )


def oldest_first(paths: Sequence[Path]) -> list[Path]:
    """Order log files so that the oldest content is imported first.

    Rotated files carry a number (higher is older); otherwise modification time decides.
    """

    def key(p: Path) -> tuple[int, float, str]:
        try:
            mtime = p.stat().st_mtime
        except OSError:
            mtime = 0.0
        return (-rotation_number(p), mtime, str(p))

    return sorted(paths, key=key)


def is_stream(path: str) -> bool:
    """True for `-` and for pipes or character devices given as paths."""
    if path == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


class GunzipStream:
    """Decompress gzip incrementally, keeping what a truncated file still holds.

    Works on pipes (which cannot seek) and on files; `fileobj` is the compressed input.
    `complete` tells, once the input is read, whether it ended with a whole member (its
    trailer checked): a `.gz` that logrotate is still writing is not complete yet.
    """

    def __init__(self, raw: BinaryIO, first: bytes = b"") -> None:
        self.fileobj = raw
        self._raw = raw
        self._d = zlib.decompressobj(wbits=47)
        self._pending = first
        self._done = False
        self._member_fed = False  # the current member has been given bytes
        self.complete = False

    def __enter__(self) -> GunzipStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()

    def read(self, n: int = 1 << 20) -> bytes:
        out = bytearray()
        while len(out) < n and not self._done:
            if self._d.eof:  # the next member of a concatenated file, if any
                self._pending = self._d.unused_data + self._pending
                self._d = zlib.decompressobj(wbits=47)
                self._member_fed = False
            data = self._d.unconsumed_tail or self._pending
            self._pending = b""
            if not data:
                data = self._raw.read(1 << 16)
                if not data:
                    self._done = True
                    # Ended between members (or right after the last one's trailer).
                    self.complete = self._d.eof or not self._member_fed
                    break
            try:
                out += self._d.decompress(data, n - len(out))
                self._member_fed = True
            except zlib.error:
                self._done = True  # corrupt from here on: keep what came before
                # Junk after a whole member (zero padding) still ends a complete file.
                self.complete = not self._member_fed
        return bytes(out)


def stream_reader(raw: BinaryIO) -> BinaryIO | GunzipStream:
    """Wrap a stream, decompressing it when it starts with the gzip magic bytes."""
    first = raw.read(2)
    if first == GZIP_MAGIC:
        return GunzipStream(raw, first)
    return _Prepend(raw, first)  # type: ignore[return-value]


class _Prepend:
    def __init__(self, raw: BinaryIO, first: bytes) -> None:
        self._raw = raw
        self._first = first

    def read(self, n: int) -> bytes:
        if self._first:
            out, self._first = self._first, b""
            return out + (self._raw.read(n - len(out)) if n > len(out) else b"")
        return self._raw.read(n)


def _readinto(reader: Readable, view: memoryview) -> int:
    try:
        if hasattr(reader, "readinto"):
            return int(reader.readinto(view) or 0)
        data = reader.read(len(view))
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return 0  # a truncated gzip: keep what was decompressed
    view[: len(data)] = data
    return len(data)


class LineBlocks:
    r"""Blocks of whole lines from a reader: iterate for (block, bytes consumed), each
    block ending in a newline and handed out without copying.

    - Lines end with `\n` (a `\r` before it is the parser's business). An input whose
      first block holds `\r` but no `\n` at all ends its lines with `\r` alone (classic
      Mac OS, some Windows tools): each `\r` is read as a `\n`, byte for byte, so
      offsets stay true (`cr_only`).
    - An unterminated last line is yielded (with a newline added) only if `take_partial`
      (or what it returns at the end) is true; otherwise it is left unread for the next
      run, and `left` says how many bytes it has.
    - A line longer than MAX_LINE_BYTES is yielded cut to that length: still one line,
      consuming all of its bytes, so memory stays bounded and line numbers stay true.

    Example:
        >>> import io
        >>> blocks = LineBlocks(io.BytesIO(b"a\nbc\nhalf"), 64, take_partial=False)
        >>> [(bytes(b), n) for b, n in blocks], blocks.left
        ([(b'a\nbc\n', 5)], 4)
    """

    def __init__(
        self,
        reader: Readable,
        batch_bytes: int,
        *,
        take_partial: Callable[[], bool] | bool = True,
    ) -> None:
        self.reader = reader
        self.batch_bytes = batch_bytes
        self.take_partial = take_partial
        self.left = 0
        self.cr_only = False
        self._first = True

    def _take(self) -> bool:
        return bool(self.take_partial() if callable(self.take_partial) else self.take_partial)

    def __iter__(self) -> Iterator[tuple[bytes | memoryview, int]]:
        pending = b""
        eof = False
        while not eof:
            buf = bytearray(len(pending) + self.batch_bytes)
            buf[: len(pending)] = pending
            view = memoryview(buf)
            filled = start = len(pending)
            while filled < len(buf):
                n = _readinto(self.reader, view[filled:])
                if not n:
                    eof = True
                    break
                filled += n
            if self._first:
                self._first = False
                self.cr_only = buf.find(b"\n", 0, filled) < 0 and buf.find(b"\r", 0, filled) >= 0
            if self.cr_only:
                view[start:filled] = bytes(view[start:filled]).replace(b"\r", b"\n")
            cut = buf.rfind(b"\n", 0, filled)
            if cut >= 0:
                pending = bytes(view[cut + 1 : filled])
                yield view[: cut + 1], cut + 1
                continue
            if filled < MAX_LINE_BYTES:
                pending = bytes(view[:filled])
                continue
            # An overlong line: keep its start, drop the rest up to its end.
            head = bytes(view[:MAX_LINE_BYTES])
            del view, buf
            dropped, rest = self._skip_line()
            if rest is None:  # it has no end (yet)
                if self._take():
                    yield head + b"\n", filled + dropped
                else:
                    self.left = filled + dropped
                return
            yield head + b"\n", filled + dropped
            pending, eof = rest, False
        if pending:
            if self._take():
                yield pending + b"\n", len(pending)
            else:
                self.left = len(pending)

    def _skip_line(self) -> tuple[int, bytes | None]:
        """Read on to the end of the current line: (bytes read up to and with its newline,
        what follows it), or (bytes read, None) when the input ends first."""
        end = b"\r" if self.cr_only else b"\n"
        dropped = 0
        while True:
            buf = bytearray(1 << 16)
            chunk = bytes(buf[: _readinto(self.reader, memoryview(buf))])
            if not chunk:
                return dropped, None
            i = chunk.find(end)
            if i >= 0:
                rest = chunk[i + 1 :]
                return dropped + i + 1, rest.replace(b"\r", b"\n") if self.cr_only else rest
            dropped += len(chunk)


def skip_bytes(reader: BinaryIO, n: int) -> int:
    """Read and drop `n` bytes (for gzip content, which cannot seek cheaply)."""
    left = n
    while left > 0:
        chunk = reader.read(min(left, 1 << 20))
        if not chunk:
            break
        left -= len(chunk)
    return n - left

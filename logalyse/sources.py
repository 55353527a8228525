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
    """

    def __init__(self, raw: BinaryIO, first: bytes = b"") -> None:
        self.fileobj = raw
        self._raw = raw
        self._d = zlib.decompressobj(wbits=47)
        self._pending = first
        self._done = False

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
            data = self._d.unconsumed_tail or self._pending
            self._pending = b""
            if not data:
                data = self._raw.read(1 << 16)
                if not data:
                    self._done = True
                    break
            try:
                out += self._d.decompress(data, n - len(out))
            except zlib.error:
                self._done = True  # corrupt from here on: keep what came before
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


def batches(
    reader: Readable,
    batch_bytes: int,
    *,
    take_partial: Callable[[], bool] | bool = True,
) -> Iterator[tuple[bytes | memoryview, int]]:
    """Yield (block, bytes consumed): blocks of whole lines, each ending in a newline.

    Blocks are read into a fresh buffer and handed out without copying. At end of
    input, an unterminated last line is yielded (with a newline added) only if
    `take_partial` (or what it returns) is true; otherwise it stays for the next run.
    A line longer than MAX_LINE_BYTES is cut there, so memory stays bounded.
    """
    pending = b""
    eof = False
    while not eof:
        buf = bytearray(len(pending) + batch_bytes)
        buf[: len(pending)] = pending
        view = memoryview(buf)
        filled = len(pending)
        while filled < len(buf):
            n = _readinto(reader, view[filled:])
            if not n:
                eof = True
                break
            filled += n
        cut = buf.rfind(b"\n", 0, filled)
        if cut < 0:
            if filled >= MAX_LINE_BYTES:
                yield bytes(view[:filled]) + b"\n", filled
                pending = b""
            else:
                pending = bytes(view[:filled])
            continue
        pending = bytes(view[cut + 1 : filled])
        yield view[: cut + 1], cut + 1
    if pending and (take_partial() if callable(take_partial) else take_partial):
        yield pending + b"\n", len(pending)


def skip_bytes(reader: BinaryIO, n: int) -> int:
    """Read and drop `n` bytes (for gzip content, which cannot seek cheaply)."""
    left = n
    while left > 0:
        chunk = reader.read(min(left, 1 << 20))
        if not chunk:
            break
        left -= len(chunk)
    return n - left

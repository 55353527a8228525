"""Day keys: one random secret per day, in a file beside the database (never in it), erased
in place once its day is closed, so that old visitor ids cannot be brute-forced back to
addresses.

The file is written where it lies and never copied: a header, then fixed 64-byte slots,
each a day and its key (with a CRC, so a torn write reads as an empty slot). A new key
fills a free slot (`pwrite` + `fsync`); a closed day's slot is overwritten with zeros. No
temporary file, no rename: on a filesystem that writes in place (ext4, xfs), the bytes of a
destroyed key are gone from the disk. Copy-on-write filesystems (btrfs, zfs), snapshots and
SSD wear levelling may keep old blocks: put the keys on tmpfs there (`keys_dir`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
import struct
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path

from .errors import KeyFileError

KEY_BYTES = 32
MAGIC = b"logalyse day keys\n"
VERSION = 2
HEADER = struct.Struct("<32sHH28x")  # magic, version, slot size
SLOT = struct.Struct("<B10s32sI17x")  # in use, day (YYYY-MM-DD), key, crc32 of the three
SLOTS_AT_ONCE = 64  # the file grows by this many slots when full (appended: nothing moves)


def _crc(used: int, day: bytes, key: bytes) -> int:
    return zlib.crc32(bytes([used]) + day + key)


class DayKeys:
    """The secret per-day keys of one store: in a 0600 file, or in memory (`path` None).

    Example:
        >>> import tempfile, pathlib
        >>> keys = DayKeys(pathlib.Path(tempfile.mkdtemp()) / "db.keys")
        >>> len(keys.key("2026-11-01"))
        32
        >>> _ = keys.destroy(["2026-11-01"]); keys.days()
        []
    """

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._keys: dict[str, bytes] = {}
        self._slots: dict[str, int] = {}  # day -> slot index in the file
        self._free: list[int] = []  # slot indexes with no key
        self._count = 0  # slots in the file
        self._legacy: int | None = None  # bytes of a version-1 (JSON) file to convert
        self._lock = threading.Lock()  # parsing threads ask for keys concurrently
        self._ready = False  # stale files cleaned, a legacy file converted
        self._load()

    # -- reading -------------------------------------------------------------------

    def _open(self, flags: int) -> int:
        assert self.path is not None
        try:
            return os.open(self.path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise KeyFileError(
                    f"the day-key file {self.path} is a symbolic link: refusing to follow it "
                    "(remove the link, or point --keys-dir at a real directory)"
                ) from e
            raise KeyFileError(f"cannot open the day-key file {self.path}: {e.strerror}") from e

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            fd = self._open(os.O_RDONLY)
        except KeyFileError as e:
            if isinstance(e.__cause__, FileNotFoundError):
                return
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise KeyFileError(f"the day-key file {self.path} is not a regular file")
            if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.geteuid():
                os.fchmod(fd, 0o600)  # someone widened the permissions: narrow them first
            data = b""
            while chunk := os.read(fd, 1 << 16):
                data += chunk
        finally:
            os.close(fd)
        if data[:1] == b"{":
            self._read_legacy(data)
        elif data:
            self._read_slots(data)

    def _corrupt(self, why: str) -> KeyFileError:
        return KeyFileError(
            f"the day-key file {self.path} is unreadable or corrupt ({why}); move it away to "
            "start new keys (visitor ids of its open days will not link)"
        )

    def _read_slots(self, data: bytes) -> None:
        if len(data) < HEADER.size:
            raise self._corrupt("too short")
        magic, version, size = HEADER.unpack_from(data)
        if magic.rstrip(b"\0") != MAGIC or version != VERSION or size != SLOT.size:
            raise self._corrupt("not a logalyse day-key file of this version")
        self._count = (len(data) - HEADER.size) // SLOT.size
        for i in range(self._count):
            used, day, key, crc = SLOT.unpack_from(data, HEADER.size + i * SLOT.size)
            text = day.decode("ascii", "replace")
            if used == 1 and crc == _crc(used, day, key) and text not in self._keys:
                self._keys[text] = key
                self._slots[text] = i
            else:
                self._free.append(i)  # empty, torn by a crash before use, or a duplicate

    def _read_legacy(self, data: bytes) -> None:
        """Version 1: JSON `{"format": 1, "keys": {day: hex}}`, rewritten as a whole each time."""
        try:
            doc = json.loads(data.decode("utf-8"))
            self._keys = {str(d): bytes.fromhex(k) for d, k in doc["keys"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise self._corrupt(str(e)) from e
        self._legacy = len(data)

    # -- writing -------------------------------------------------------------------

    def _prepare(self) -> None:
        """Before the first write: erase the temporary files older versions left behind
        (a kill -9 between write and rename), and convert a version-1 file in place."""
        if self._ready or self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in self.path.parent.glob(self.path.name + ".*.tmp"):
            _erase(stale)
        if self._legacy is not None:
            fd = self._open(os.O_RDWR)
            try:
                os.pwrite(fd, b"\0" * self._legacy, 0)  # the JSON's bytes, overwritten
                os.fsync(fd)
                os.ftruncate(fd, 0)
                self._count, self._slots, self._free = 0, {}, []
                self._grow(fd, max(SLOTS_AT_ONCE, len(self._keys)))
                for day, key in sorted(self._keys.items()):
                    self._write_slot(fd, self._free.pop(0), day, key)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._legacy = None
        self._ready = True

    def _grow(self, fd: int, slots: int) -> None:
        if self._count == 0:
            os.pwrite(fd, HEADER.pack(MAGIC, VERSION, SLOT.size), 0)
        os.pwrite(fd, b"\0" * (SLOT.size * slots), HEADER.size + self._count * SLOT.size)
        self._free.extend(range(self._count, self._count + slots))
        self._count += slots

    def _write_slot(self, fd: int, index: int, day: str, key: bytes) -> None:
        d = day.encode("ascii")
        os.pwrite(fd, SLOT.pack(1, d, key, _crc(1, d, key)), HEADER.size + index * SLOT.size)
        self._slots[day] = index

    def days(self) -> list[str]:
        """Days (YYYY-MM-DD) that still have a key."""
        return sorted(self._keys)

    def key(self, day: str) -> bytes:
        """The key of `day`, created (and on disk, before any row uses it) when missing."""
        with self._lock:
            k = self._keys.get(day)
            if k is None:
                k = secrets.token_bytes(KEY_BYTES)
                if self.path is not None:
                    self._prepare()
                    fd = self._open(os.O_RDWR | os.O_CREAT)
                    try:
                        os.fchmod(fd, 0o600)
                        if not self._free:
                            self._grow(fd, SLOTS_AT_ONCE)
                        self._write_slot(fd, self._free.pop(0), day, k)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                self._keys[day] = k
            return k

    def destroy(self, days: Iterable[str]) -> list[str]:
        """Erase the keys of `days` where they lie; return the days whose key existed."""
        with self._lock:
            gone = [d for d in days if d in self._keys]
            if not gone:
                return []
            if self.path is not None:
                self._prepare()
                fd = self._open(os.O_RDWR)
                try:
                    for d in gone:
                        index = self._slots.pop(d)
                        os.pwrite(fd, b"\0" * SLOT.size, HEADER.size + index * SLOT.size)
                        self._free.append(index)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for d in gone:
                del self._keys[d]
            return gone


def _erase(path: Path) -> None:
    """Overwrite a file's bytes with zeros, then remove it (never through a symlink)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        with contextlib.suppress(OSError):
            if path.is_symlink():
                path.unlink()  # the link itself, not what it points to
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.pwrite(fd, b"\0" * os.fstat(fd).st_size, 0)
            os.fsync(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        path.unlink()

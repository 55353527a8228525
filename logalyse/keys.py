"""Day keys: one random secret per day, in a file beside the database (never in it), erased
in place once its day is closed, so that old visitor ids cannot be brute-forced back to
addresses.

The file is written where it lies and never copied: a header, then fixed 64-byte slots,
each a day and its key (with a CRC, so a torn write reads as an empty slot). A new key
fills a free slot (`pwrite` + `fsync`); a closed day's slot is overwritten with zeros. No
temporary file, no rename: on a filesystem that writes in place (ext4, xfs), the bytes of a
destroyed key are gone from the disk. Copy-on-write filesystems (btrfs, zfs), snapshots and
SSD wear levelling may keep old blocks: put the keys on tmpfs there (`keys_dir`).

Shared keys (several servers, one site): a store that adopted a shared seed derives a
missing day's key from it instead of drawing one, so that every server holding the same
seed gives the same visitor the same id. The seed is a one-way ratchet, kept in its own
slot: `seed(d + 1) = H(seed(d))`, `key(d) = H'(seed(d), d)`; when days close, the slot is
overwritten in place with the successor of the last closed day, so their keys cannot be
derived again. A day before the seed's (a late line of a closed day) gets a random key.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
import struct
import threading
import zlib
from collections.abc import Iterable
from datetime import date, timedelta
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


#: A shared seed gives keys for days from this one on unless told (a backfill of old logs).
SEED_FIRST_DAY = "1970-01-01"
#: Slot kinds: a day's key, or the shared seed (its day in the day field).
KEY_SLOT, SEED_SLOT = 1, 2
SEED_FILE_MAGIC = "logalyse shared seed 1"


def ratchet(seed: bytes, steps: int = 1) -> bytes:
    """The seed `steps` days later: one-way (BLAKE2b), so earlier seeds cannot be had back."""
    for _ in range(steps):
        seed = hashlib.blake2b(seed, digest_size=KEY_BYTES, person=b"logalyse-ratchet").digest()
    return seed


def derive_key(seed: bytes, day: str) -> bytes:
    """Day `day`'s key from the seed of that very day.

    Example:
        >>> s = bytes(32)
        >>> derive_key(ratchet(s, 2), "2026-11-03") == derive_key(ratchet(ratchet(s)), "2026-11-03")
        True
    """
    return hashlib.blake2b(
        day.encode("ascii"), key=seed, digest_size=KEY_BYTES, person=b"logalyse-daykey"
    ).digest()


def _day_number(day: str) -> int:
    return date.fromisoformat(day).toordinal()


def new_seed_text(day: str) -> str:
    """A new shared seed for days from `day` on, as `keys init --shared` writes it."""
    return f"{SEED_FILE_MAGIC}\nday {day}\nseed {secrets.token_hex(KEY_BYTES)}\n"


def parse_seed_text(text: str) -> tuple[str, bytes]:
    """(first day, seed) of a seed file's text; KeyFileError when it is not one."""
    lines = text.strip().splitlines()
    try:
        if lines[0] != SEED_FILE_MAGIC or len(lines) != 3:
            raise ValueError("not a logalyse shared seed")
        day = lines[1].removeprefix("day ")
        date.fromisoformat(day)
        seed = bytes.fromhex(lines[2].removeprefix("seed "))
        if len(seed) != KEY_BYTES:
            raise ValueError("a seed is 32 bytes")
    except (ValueError, IndexError) as e:
        raise KeyFileError(f"not a logalyse shared seed file ({e})") from None
    return day, seed


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
        self._seed: tuple[str, bytes] | None = None  # (day, its seed) when shared
        self._seed_slot: int | None = None
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
            if used == KEY_SLOT and crc == _crc(used, day, key) and text not in self._keys:
                self._keys[text] = key
                self._slots[text] = i
            elif used == SEED_SLOT and crc == _crc(used, day, key) and self._seed is None:
                self._seed, self._seed_slot = (text, key), i
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

    def _write_slot(self, fd: int, index: int, day: str, key: bytes, kind: int = KEY_SLOT) -> None:
        d = day.encode("ascii")
        os.pwrite(fd, SLOT.pack(kind, d, key, _crc(kind, d, key)), HEADER.size + index * SLOT.size)
        if kind == KEY_SLOT:
            self._slots[day] = index

    def _store(self, day: str, value: bytes, kind: int, index: int | None = None) -> int:
        """Write a slot (a free one unless `index`) and fsync it; return its index."""
        self._prepare()
        fd = self._open(os.O_RDWR | os.O_CREAT)
        try:
            os.fchmod(fd, 0o600)
            if index is None:
                if not self._free:
                    self._grow(fd, SLOTS_AT_ONCE)
                index = self._free.pop(0)
            self._write_slot(fd, index, day, value, kind)
            os.fsync(fd)
        finally:
            os.close(fd)
        return index

    def _write_seed(self, day: str, seed: bytes) -> None:
        """Put the seed in its slot, over the one before (in place: no copy is left)."""
        if self.path is not None:
            self._seed_slot = self._store(day, seed, SEED_SLOT, self._seed_slot)
        self._seed = (day, seed)

    @property
    def shared_since(self) -> str | None:
        """The first day whose key the shared seed still gives, or None (keys random)."""
        return self._seed[0] if self._seed else None

    def adopt(self, day: str, seed: bytes) -> None:
        """Derive the keys of days from `day` on (that have none yet) from a shared seed."""
        with self._lock:
            self._write_seed(day, seed)

    def days(self) -> list[str]:
        """Days (YYYY-MM-DD) that still have a key."""
        return sorted(self._keys)

    def key(self, day: str) -> bytes:
        """The key of `day`, created (and on disk, before any row uses it) when missing."""
        with self._lock:
            k = self._keys.get(day)
            if k is None:
                if self._seed is not None and day >= self._seed[0]:
                    start, seed = self._seed
                    k = derive_key(ratchet(seed, _day_number(day) - _day_number(start)), day)
                else:
                    k = secrets.token_bytes(KEY_BYTES)
                if self.path is not None:
                    self._store(day, k, KEY_SLOT)
                self._keys[day] = k
            return k

    def destroy(self, days: Iterable[str]) -> list[str]:
        """Erase the keys of `days` where they lie; return the days whose key existed. A
        shared seed moves on past the last of them (their keys cannot be derived again)."""
        with self._lock:
            days = list(days)
            if self._seed is not None and days:
                last = max(days)
                start, seed = self._seed
                if last >= start:
                    after = (date.fromisoformat(last) + timedelta(days=1)).isoformat()
                    self._write_seed(after, ratchet(seed, _day_number(after) - _day_number(start)))
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

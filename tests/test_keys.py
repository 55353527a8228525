"""Day keys: private, written in place, erased where they lay, never through a symlink."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from logalyse.errors import KeyFileError
from logalyse.keys import HEADER, SLOT, SLOTS_AT_ONCE, DayKeys

from .test_ingest import line, write


def test_key_file_is_private_and_keys_are_random(tmp_path: Path) -> None:
    keys = DayKeys(tmp_path / "k" / "db.keys")
    a, b = keys.key("2026-11-01"), keys.key("2026-11-02")
    assert a != b and len(a) == 32
    assert stat.S_IMODE((tmp_path / "k" / "db.keys").stat().st_mode) == 0o600
    again = DayKeys(tmp_path / "k" / "db.keys")
    assert again.key("2026-11-01") == a
    assert DayKeys(tmp_path / "other.keys").key("2026-11-01") != a


def test_keys_are_written_and_erased_in_place(tmp_path: Path) -> None:
    path = tmp_path / "db.keys"
    keys = DayKeys(path)
    old = keys.key("2026-11-01")
    inode = path.stat().st_ino
    keys.key("2026-11-02")
    assert keys.destroy(["2026-11-01", "2026-10-01"]) == ["2026-11-01"]
    data = path.read_bytes()
    assert old not in data and b"2026-11-01" not in data and old.hex().encode() not in data
    assert path.stat().st_ino == inode and sorted(os.listdir(tmp_path)) == ["db.keys"]
    assert DayKeys(path).days() == ["2026-11-02"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A day whose key is gone gets a new one, never the old one back, in the freed slot.
    assert DayKeys(path).key("2026-11-01") != old
    assert path.stat().st_size == HEADER.size + SLOTS_AT_ONCE * SLOT.size


def test_the_file_grows_in_place_when_its_slots_are_full(tmp_path: Path) -> None:
    path = tmp_path / "db.keys"
    keys = DayKeys(path)
    inode = path.stat().st_ino if path.exists() else None
    days = [f"2025-{m:02}-{d:02}" for m in range(1, 13) for d in range(1, 11)]
    made = {d: keys.key(d) for d in days}
    assert inode is None or path.stat().st_ino == inode
    assert path.stat().st_size == HEADER.size + 2 * SLOTS_AT_ONCE * SLOT.size
    again = DayKeys(path)
    assert {d: again.key(d) for d in days} == made


def test_a_torn_slot_reads_as_no_key(tmp_path: Path) -> None:
    path = tmp_path / "db.keys"
    keys = DayKeys(path)
    keys.key("2026-11-01")
    keys.key("2026-11-02")
    with open(path, "r+b") as f:  # a crash in the middle of writing the second slot
        f.seek(HEADER.size + SLOT.size + 20)
        f.write(b"\0" * 10)
    assert DayKeys(path).days() == ["2026-11-01"]


def test_widened_permissions_are_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "db.keys"
    DayKeys(path).key("2026-11-01")
    os.chmod(path, 0o644)
    DayKeys(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "db.keys"
    path.write_text("{not json")
    with pytest.raises(KeyFileError, match="unreadable or corrupt"):
        DayKeys(path)
    path.write_bytes(b"something else entirely" * 10)
    with pytest.raises(KeyFileError, match="not a logalyse day-key file"):
        DayKeys(path)


def test_a_version_1_file_is_converted_in_place(tmp_path: Path) -> None:
    path = tmp_path / "db.keys"
    old = {"2026-11-01": os.urandom(32), "2026-11-02": os.urandom(32)}
    path.write_text(json.dumps({"format": 1, "keys": {d: k.hex() for d, k in old.items()}}))
    path.chmod(0o600)
    inode = path.stat().st_ino
    # Temporary files version 1 left when killed between write and rename.
    stale = tmp_path / "db.keys.4242.tmp"
    stale.write_text(json.dumps({"format": 1, "keys": {"2026-10-01": "ab" * 32}}))
    keys = DayKeys(path)
    assert keys.days() == sorted(old)
    keys.destroy(["2026-11-01"])  # the first write converts the file
    data = path.read_bytes()
    assert path.stat().st_ino == inode and data.startswith(b"logalyse day keys\n")
    assert b"format" not in data and old["2026-11-01"].hex().encode() not in data
    assert DayKeys(path).key("2026-11-02") == old["2026-11-02"]
    assert not stale.exists()


@pytest.mark.parametrize("target_exists", [True, False])
def test_a_symlinked_key_file_is_refused(tmp_path: Path, target_exists: bool) -> None:
    victim = tmp_path / "passwd"
    if target_exists:
        victim.write_text("root:x:0:0\n")
        victim.chmod(0o644)
    (tmp_path / "db.keys").symlink_to(victim)
    with pytest.raises(KeyFileError, match="symbolic link: refusing to follow it"):
        DayKeys(tmp_path / "db.keys").key("2026-11-01")
    if target_exists:
        assert victim.read_text() == "root:x:0:0\n"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    else:
        assert not victim.exists()


def test_a_symlinked_stale_file_is_unlinked_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "precious"
    victim.write_text("keep me\n")
    (tmp_path / "db.keys.77.tmp").symlink_to(victim)
    DayKeys(tmp_path / "db.keys").key("2026-11-01")
    assert victim.read_text() == "keep me\n"
    assert not (tmp_path / "db.keys.77.tmp").is_symlink()


# -- on a real disk: nothing left of a closed day's key ---------------------------------


def _mount_ext4(image: Path, mountpoint: Path) -> None:
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        pytest.skip("needs root and mkfs.ext4 (CI runs as root)")
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mountpoint)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"loop mounts are not allowed here: {mounted.stderr.decode().strip()}")


#: `logalyse` that also notes every key it makes in a file off the disk under test (so the
#: test knows what to look for), and can SIGKILL itself just after writing one.
RECORDING = """
import os, signal, sys
import logalyse.keys as k
from logalyse.cli import cli
log, die = sys.argv.pop(1), sys.argv.pop(1) == "die"
write = k.DayKeys._write_slot
def write_and_note(self, fd, index, day, key, *kind):
    write(self, fd, index, day, key, *kind)
    with open(log, "a") as f:
        f.write(f"{day} {key.hex()}\\n")
    if die:
        os.kill(os.getpid(), signal.SIGKILL)
k.DayKeys._write_slot = write_and_note
sys.argv = ["logalyse"] + sys.argv[1:]
cli()
"""


@pytest.mark.slow
def test_no_closed_day_key_is_left_on_the_disk(tmp_path: Path) -> None:
    """Eight days imported night after night into a loop-mounted ext4, then a kill -9 just
    after a key is written: the raw image holds no key of a closed day, in any form (the
    JSON file of version 1 left 2-7 copies of each, one per rewrite)."""
    image, mnt, noted = tmp_path / "disk.img", tmp_path / "mnt", tmp_path / "keys-made.txt"
    _mount_ext4(image, mnt)
    log, db = mnt / "access.log", mnt / "db.duckdb"

    def run(*, die: bool = False) -> int:
        return subprocess.run(
            [sys.executable, "-c", RECORDING, str(noted), "die" if die else "live"]
            + ["--db", str(db), "import", "-q", str(log)],
            capture_output=True,
        ).returncode

    try:
        for d in range(1, 9):  # a day a night, as cron does
            write(
                log,
                [line(ts=datetime(2026, 11, d, h), ip=f"203.0.113.{h}") for h in range(0, 24, 3)],
                mode="a",
            )
            assert run() == 0
        write(log, [line(ts=datetime(2026, 11, 9, 1))], mode="a")
        assert run(die=True) == -signal.SIGKILL
        open_days = DayKeys(Path(str(db) + ".keys")).days()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    made = [ln.split() for ln in noted.read_text().splitlines()]
    assert len(made) == 9 and open_days == ["2026-11-08", "2026-11-09"]
    data = image.read_bytes()
    for day, key in made:
        found = bytes.fromhex(key) in data or key.encode() in data
        assert found == (day in open_days), day

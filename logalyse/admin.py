"""Upkeep of a store: retention (`prune`), what it holds (`info`, `inputs`), redoing an
input (`forget`), the settings in effect.

Plain functions returning data or `Report`s; the CLI renders them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from .config import KEYS, Setting
from .errors import ConfigError
from .keys import SEED_FIRST_DAY
from .model import Column, Report
from .store import Store, mark_sessions_dirty, remake_dirty_sessions, transaction

_AGE = re.compile(r"^\s*(\d+)\s*(d|days?|w|weeks?|mo|months?|y|years?|m)\s*$")


@dataclass(frozen=True)
class Age:
    months: int = 0
    days: int = 0

    def before(self, now: datetime) -> datetime:
        """The instant `self` before `now` (months by the calendar; day of month clamped).

        Example:
            >>> Age(months=13).before(datetime(2026, 3, 31))
            datetime.datetime(2025, 2, 28, 0, 0)
        """
        year, month = divmod(now.year * 12 + now.month - 1 - self.months, 12)
        day = min(now.day, _days_in(year, month + 1))
        start = datetime(year, month + 1, day)
        return start - timedelta(days=self.days)


def _days_in(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def parse_age(text: str) -> Age:
    """`13mo` (months), `400d`, `52w`, `2y`. A bare `m` is refused: it is minutes in
    `--gap` and `--every`, so `13m` would read as either.

    Example:
        >>> parse_age("13mo"), parse_age("2w")
        (Age(months=13, days=0), Age(months=0, days=14))
    """
    m = _AGE.match(text.lower())
    if not m:
        raise ValueError(f"{text!r} is not an age like 13mo (months), 400d, 52w or 2y")
    n, unit = int(m.group(1)), m.group(2)
    if unit == "m":
        raise ValueError(f"{text!r}: write {n}mo for months (m is minutes elsewhere)")
    unit = {"mo": "m", "mon": "m"}.get(unit[:2], unit[0])
    if n * {"d": 1, "w": 7, "m": 31, "y": 366}[unit] > 100 * 366:
        raise ValueError(f"{text!r} is more than a hundred years: nothing is that old")
    if unit == "y":
        return Age(months=12 * n)
    if unit == "m":
        return Age(months=n)
    return Age(days=n * (7 if unit == "w" else 1))


@dataclass
class PruneStats:
    cutoff: datetime
    requests: int = 0
    sessions: int = 0


def prune(
    store: Store, age: Age, *, dry_run: bool = False, now: datetime | None = None
) -> PruneStats:
    """Delete requests and sessions from before `age` ago (UTC midnight), in one
    transaction. Inputs' checkpoints stay, so old files are not imported again.

    Example:
        >>> import pathlib, tempfile
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     prune(s, parse_age("13mo"), now=datetime(2026, 11, 28)).cutoff
        datetime.datetime(2025, 10, 28, 0, 0)
    """
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    cutoff = age.before(now).replace(hour=0, minute=0, second=0, microsecond=0)
    stats = PruneStats(cutoff)
    with store.writer_lock(nothing="nothing was deleted"), store.attached() as db:
        (stats.requests,) = db.execute(
            "SELECT count(*) FROM requests WHERE ts < ?", [cutoff]
        ).fetchall()[0]
        (stats.sessions,) = db.execute(
            "SELECT count(*) FROM sessions WHERE start < ?", [cutoff]
        ).fetchall()[0]
        if dry_run or not (stats.requests or stats.sessions):
            return stats
        with transaction(db):
            db.execute("DELETE FROM requests WHERE ts < ?", [cutoff])
            db.execute("DELETE FROM sessions WHERE start < ?", [cutoff])
            # Bookkeeping of days long closed (their keys are gone already).
            db.execute(
                "DELETE FROM day_keys WHERE day < ?::DATE AND closed_at IS NOT NULL", [cutoff]
            )
        db.execute("CHECKPOINT")  # give the space back to the file's free list
    return stats


def info(store: Store) -> list[Report]:
    """What the database holds: size, rows, days, open day keys, inputs, schema.

    Example:
        >>> import pathlib, tempfile
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     info(s)[0].record["requests"]
        0
    """
    with store.attached() as db:
        (requests, first, last, days) = db.execute(
            "SELECT count(*), min(ts), max(ts), count(DISTINCT ts::DATE) FROM requests"
        ).fetchall()[0]
        (sessions,) = db.execute("SELECT count(*) FROM sessions").fetchall()[0]
        (agents,) = db.execute("SELECT count(*) FROM user_agents").fetchall()[0]
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        sources = db.execute(
            "SELECT name, kind, lines, byte_offset, last_import FROM sources "
            "ORDER BY last_import DESC NULLS LAST, id"
        ).fetchall()
        closed = db.execute("SELECT count(*) FROM day_keys WHERE closed_at IS NOT NULL").fetchall()
    keys = store.day_keys()
    open_days = keys.days()
    shared = f"shared seed, from {keys.shared_since} on" if keys.shared_since else "random"
    size = store.path.stat().st_size if store.path.exists() else 0
    wal = store.path.with_name(store.path.name + ".wal")
    items: list[tuple[str, str, str, object]] = [
        ("path", "Database", "text", str(store.path)),
        ("size_bytes", "Size (bytes)", "int", size + (wal.stat().st_size if wal.exists() else 0)),
        ("schema_version", "Schema version", "int", int(meta.get("schema_version", 0))),
        ("created_at", "Created", "text", meta.get("created_at")),
        ("requests", "Requests", "int", requests),
        ("sessions", "Sessions", "int", sessions),
        ("user_agents", "User agents", "int", agents),
        ("first_request", "First request (UTC)", "text", _iso(first)),
        ("last_request", "Last request (UTC)", "text", _iso(last)),
        ("days", "Days with requests", "int", days),
        ("open_day_keys", "Day keys still held", "text", ", ".join(open_days) or "none"),
        ("closed_days", "Days closed (keys destroyed)", "int", closed[0][0]),
        ("day_keys", "New day keys", "text", shared),
        ("inputs", "Inputs (files and streams)", "int", len(sources)),
    ]
    inputs = Report(
        "inputs",
        "Inputs, most recently imported first",
        [
            Column("name", "input"),
            Column("kind", "kind"),
            Column("lines", "lines", "int"),
            Column("bytes", "bytes", "int"),
            Column("last_import", "last import (UTC)"),
        ],
        [(n, k, ln, b, _iso(t)) for n, k, ln, b, t in sources],
        empty="No input imported yet.",
    )
    return [Report.of_record("database", f"Database {store.path}", items), inputs]


_INPUTS = (
    "SELECT s.id, s.kind, s.name, s.lines, s.byte_offset, s.complete, count(r.line_no), "
    "s.last_import FROM sources s LEFT JOIN requests r ON r.source_id = s.id "
    "GROUP BY ALL ORDER BY s.id"
)


def inputs(store: Store) -> list[Report]:
    """Every input the store has read, with its checkpoint: a file's lines and bytes read
    (and whether a `.gz` was read to its end), a stream's lines over all its runs, and the
    requests each stored.

    Example:
        >>> import pathlib, tempfile
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as s:
        ...     inputs(s)[0].rows
        []
    """
    with store.attached() as db:
        found = db.execute(_INPUTS).fetchall()
    return [
        Report(
            "inputs",
            "Inputs and their checkpoints",
            [
                Column("id", "id", "int"),
                Column("kind", "kind"),
                Column("name", "input, as last read"),
                Column("lines", "lines", "int"),
                Column("bytes", "bytes", "int"),
                Column("complete", "complete"),
                Column("requests", "requests", "int"),
                Column("last_import", "last import (UTC)"),
            ],
            [
                (i, k, n, ln, b, ("yes" if c else "no") if k == "file" else "", r, _iso(t))
                for i, k, n, ln, b, c, r, t in found
            ],
            notes=[
                "lines, bytes: read so far (a stream: over all its runs); "
                "complete: a .gz read to its end",
                "logalyse db forget ID drops an input's requests and checkpoint: "
                "the next import reads it again",
            ],
            empty="No input imported yet.",
        )
    ]


@dataclass
class ForgetStats:
    id: int
    kind: str
    name: str
    requests: int


def forget(store: Store, which: str, *, dry_run: bool = False) -> ForgetStats:
    """Drop an input's checkpoint and every request it stored, so that the next import of
    it reads it again from its first line (after a wrong `--format`, say).

    `which` is an id (`logalyse db inputs`), the name an input was last read under, or
    the path of a log file, recognised by its content like an import does. Sessions of
    the time the requests covered are made again.
    """
    with store.writer_lock(nothing="nothing was forgotten"), store.attached() as db:
        found = db.execute(
            "SELECT id, kind, name FROM sources WHERE name = $1 OR id::VARCHAR = $1", [which]
        ).fetchall()
        if not found and Path(which).is_file():
            from .sources import content_hash, head

            first = head(Path(which))
            candidates = db.execute(
                "SELECT id, kind, name, fingerprint, fp_len FROM sources "
                "WHERE kind = 'file' AND fp_len <= ?",
                [len(first)],
            ).fetchall()
            found = [(i, k, n) for i, k, n, fp, fl in candidates if fp == content_hash(first[:fl])]
        if not found:
            raise ConfigError(f"no input {which!r} in {store.path}: see `logalyse db inputs`")
        if len(found) > 1:
            ids = ", ".join(str(i) for i, _, _ in found)
            raise ConfigError(f"{which!r} names several inputs ({ids}): give its id")
        sid, kind, name = found[0]
        (requests,) = db.execute(
            "SELECT count(*) FROM requests WHERE source_id = ?", [sid]
        ).fetchall()[0]
        stats = ForgetStats(sid, kind, name, requests)
        if dry_run:
            return stats
        with transaction(db):
            mark_sessions_dirty(
                db, "SELECT min(ts), max(ts) FROM requests WHERE source_id = ?", [sid]
            )
            db.execute("DELETE FROM requests WHERE source_id = ?", [sid])
            db.execute("DELETE FROM sources WHERE id = ?", [sid])
        remake_dirty_sessions(db)
    return stats


def _iso(t: object) -> str | None:
    return t.isoformat(sep=" ", timespec="seconds") if isinstance(t, datetime) else None


def config_report(settings: Sequence[Setting], path: object) -> list[Report]:
    """The settings in effect, one row per key, with where each came from."""
    env = {k.name: k.envvar for k in KEYS}
    helps = {k.name: k.help for k in KEYS}

    def shown(v: object) -> str:
        if isinstance(v, list | tuple):
            return ", ".join(map(str, v)) or "(none)"
        return "(not set)" if v is None else str(v)

    return [
        Report(
            "config",
            f"Settings (config file: {path})",
            [
                Column("key", "key"),
                Column("value", "value"),
                Column("origin", "from"),
                Column("envvar", "variable"),
                Column("help", "what"),
            ],
            [(s.key, shown(s.value), s.origin, env[s.key], helps[s.key]) for s in settings],
        )
    ]


# -- shared day keys (several servers, one site) -------------------------------------------


def write_shared_seed(path: Path, first_day: str = SEED_FIRST_DAY) -> None:
    """Write a new shared seed to `path` (0600, a new file: never over one, never through
    a symlink), to copy to every server of the site and `adopt` there."""
    import os

    from .keys import new_seed_text

    try:
        date.fromisoformat(first_day)
    except ValueError:
        raise ConfigError(f"{first_day!r} is not a date (YYYY-MM-DD)") from None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: a seed is written to a new file") from None
    with os.fdopen(fd, "w") as f:
        f.write(new_seed_text(first_day))


def adopt_shared_seed(store: Store, path: Path) -> str:
    """Take the seed in `path` into the store's key storage, then overwrite `path` with
    zeros and delete it. Days from the seed's first one that have no key yet get theirs
    from it; days the store closed already stay closed (the seed moves past them).
    Returns the first day the seed now gives keys for."""
    import os

    from .errors import KeyFileError
    from .keys import _erase, parse_seed_text

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise KeyFileError(f"cannot read the seed file {path}: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        text = f.read(4096).decode("ascii", "replace")
    day, seed = parse_seed_text(text)
    # Under the writer lock: an import or tail writing a day key meanwhile could take the
    # same free slot of the key file.
    with store.writer_lock(nothing="the seed was not adopted"), store.attached() as con:
        (closed,) = con.execute(
            "SELECT max(day)::VARCHAR FROM day_keys WHERE closed_at IS NOT NULL"
        ).fetchall()[0]
        keys = store.day_keys()
        keys.adopt(day, seed)
        if closed is not None:
            keys.destroy([closed])  # moves the seed past the closed days: none of their keys
    _erase(path)
    return keys.shared_since or day

"""Store: owns the DuckDB connection, the schema and the locks.

The connection is an in-memory DuckDB instance that never spills to disk (staged
lines hold raw addresses). The database file is ATTACHed as `db` only for the
moment a unit of work needs it, then detached, so that reports can read while an
import or tail runs. Writers also take `<db>.lock` for their whole run, so two
imports never interleave.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import random
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from ..errors import StoreError, StoreLockedError
from ..keys import DayKeys
from ..quote import sql_literal
from .migrations import MIGRATIONS
from .tables import SCHEMA_VERSION, create_tables
from .tx import transaction

T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT = 10.0
DEFAULT_MEMORY_LIMIT = "1GB"


def default_db_path() -> Path:
    """`$LOGALYSE_DB`, else `$XDG_DATA_HOME/logalyse/logalyse.duckdb`."""
    env = os.environ.get("LOGALYSE_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "logalyse" / "logalyse.duckdb"


def open_private(path: Path, flags: int, *, what: str) -> int:
    """Open a file beside the database (0600 when created), never through a symlink: a
    link planted there could make logalyse create, chmod or write a file elsewhere."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(f"the {what} {path} is a symbolic link: refusing to follow it") from e
        raise StoreError(f"cannot open the {what} {path}: {e.strerror}") from e


def _setup(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    # Times are UTC; DuckDB would otherwise draw a progress bar on the user's terminal.
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


def _is_lock_error(e: duckdb.Error) -> bool:
    text = str(e).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


class Store:
    """The logalyse database.

    Example:
        >>> import tempfile, pathlib
        >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb") as store:
        ...     with store.attached() as con:
        ...         con.execute("SELECT count(*) FROM requests").fetchone()
        (0,)
    """

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int | None = None,
        keys_dir: str | Path | None = None,
    ) -> None:
        self.path = Path(path) if str(path) != ":memory:" else Path(":memory:")
        self.keys_dir = Path(keys_dir) if keys_dir is not None else None
        self.in_memory = str(path) == ":memory:"
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        # No temp directory: nothing may spill to disk (staged lines hold raw addresses).
        config: dict[str, Any] = {"temp_directory": "", "memory_limit": memory_limit}
        if threads:
            config["threads"] = threads
        self._config = config
        self.con = _setup(duckdb.connect(":memory:", config=config))
        self._depth = 0
        self._live = False  # the file is attached (an in-memory store stays attached)
        self._checked = False
        self._memory_keys: DayKeys | None = None
        if not read_only and not self.in_memory:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._live and not self.in_memory:
            self._detach()
        self.con.close()

    def renew(self) -> None:
        """Start a fresh in-memory DuckDB instance in place of this one.

        An instance keeps much of the memory its queries used (freed tables, allocator
        caches) until it closes, so a long run (tail) renews it now and then. Only between
        units of work: nothing attached, and every cursor of the old instance closed. A
        store held in memory (":memory:") keeps its instance, which holds its data.
        """
        if self.in_memory or self._depth:
            return
        if self._live:
            self._detach()
        self.con.close()
        self.con = _setup(duckdb.connect(":memory:", config=self._config))

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Another connection to the same in-memory instance (for another thread)."""
        return _setup(self.con.cursor())

    def under_memory_limit(self, limit: str, run: Callable[[], T]) -> T:
        """`run()` under a DuckDB memory `limit`: DuckDB then drops the blocks of the file it
        has read instead of keeping them up to the store's limit. If a query needs more,
        `run()` again under the store's own limit (so `run` must be able to run twice: a
        failed transaction rolls back). Where the instance already holds more than `limit`
        (an in-memory store of exports), `run()` runs once, under the store's limit."""
        try:
            try:
                self.con.execute(f"SET memory_limit = '{limit}'")
            except duckdb.OutOfMemoryException:  # could not free enough: it holds more
                return run()
            try:
                return run()
            except duckdb.OutOfMemoryException:
                self.con.execute(f"SET memory_limit = '{self.memory_limit}'")
                return run()
        finally:
            self.con.execute(f"SET memory_limit = '{self.memory_limit}'")

    @property
    def memory_limit(self) -> str:
        """The in-memory instance's memory limit, as configured."""
        return str(self._config["memory_limit"])

    def day_keys(self) -> DayKeys:
        """The secret day keys: read afresh from their file beside the database; a store
        held in memory keeps its own in memory (and writes no file)."""
        if not self.in_memory:
            return DayKeys(self.key_path)
        if self._memory_keys is None:
            self._memory_keys = DayKeys(None)
        return self._memory_keys

    @property
    def key_path(self) -> Path:
        """The day-key file: beside the database (never inside it), or in `keys_dir` (a
        tmpfs such as /run/logalyse, say), named after the database's full path."""
        if self.keys_dir is None:
            return Path(str(self.path) + ".keys")
        whole = str(self.path.resolve()).encode("utf-8", "surrogateescape")
        return (
            self.keys_dir
            / f"{self.path.name}-{hashlib.blake2b(whole, digest_size=4).hexdigest()}.keys"
        )

    @property
    def lock_path(self) -> Path:
        return Path(str(self.path) + ".lock")

    # -- attaching ---------------------------------------------------------------

    def _attach_once(self) -> None:
        target = ":memory:" if self.in_memory else str(self.path)
        mode = " (READ_ONLY)" if self.read_only else ""
        self.con.execute(f"ATTACH {sql_literal(target)} AS db{mode}")
        self.con.execute("USE db")
        self._live = True

    def _detach(self) -> None:
        self._live = False
        # After a fatal error (a full disk) DuckDB may have dropped the database already:
        # letting go of it must not hide the error that brought us here.
        with contextlib.suppress(duckdb.Error):
            self.con.execute("USE memory")
            self.con.execute("DETACH db")

    def attach(self) -> duckdb.DuckDBPyConnection:
        """Attach the database file as `db` and USE it; pair every call with `detach()`.

        Retries with backoff while another process holds the file, up to `lock_timeout`.
        Nested calls only count: the file is attached once.
        """
        if not self._live:
            if self.read_only and not self.in_memory and not self.path.exists():
                raise StoreError(
                    f"no logalyse database at {self.path} yet: run `logalyse import` first, "
                    "or point --db / LOGALYSE_DB at one"
                )
            deadline = time.monotonic() + self.lock_timeout
            delay = 0.005
            while True:
                try:
                    self._attach_once()
                    break
                except duckdb.Error as e:
                    if not _is_lock_error(e):
                        raise StoreError(f"cannot open {self.path}: {e}") from e
                    if time.monotonic() >= deadline:
                        raise StoreLockedError(
                            f"the database {self.path} stayed busy for {self.lock_timeout:g}s "
                            "(another logalyse process holds it); try again later"
                        ) from e
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.05)
            try:
                self._ensure_schema()
            except BaseException:
                self._detach()
                raise
        self._depth += 1
        return self.con

    def detach(self) -> None:
        """Undo one `attach()`; the last one detaches the file so that others can open it."""
        self._depth -= 1
        if self._depth == 0 and not self.in_memory:
            self._detach()

    @contextmanager
    def attached(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Attach the database for the duration of the block (see `attach`)."""
        con = self.attach()
        try:
            yield con
        finally:
            self.detach()

    # -- schema ------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version of the attached database (0 when empty)."""
        has_meta = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE database_name = 'db' AND table_name = 'meta'"
        ).fetchone()
        if not has_meta or not has_meta[0]:
            return 0
        row = self.con.execute("SELECT value FROM db.meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _ensure_schema(self) -> None:
        if self._checked:
            return
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this logalyse "
                f"understands ({SCHEMA_VERSION}): upgrade logalyse"
            )
        if version < SCHEMA_VERSION:
            if self.read_only:
                if version == 0:
                    raise StoreError(
                        f"{self.path} holds no logalyse data (yet): run `logalyse import` first"
                    )
                raise StoreError(
                    f"{self.path} has schema version {version}; run `logalyse import` "
                    f"(any write) to migrate it to {SCHEMA_VERSION}"
                )
            self.migrate(version)
        self._checked = True

    def migrate(self, current: int) -> None:
        """Bring the attached database to SCHEMA_VERSION: a new one is made as `tables`
        declares it; an older one gets every migration after `current`, each in its own
        transaction."""
        if current == 0:
            try:
                with transaction(self.con):
                    create_tables(self.con)
                    self.con.execute(
                        "INSERT INTO meta VALUES ('schema_version', ?), "
                        "('created_at', strftime(now(), '%Y-%m-%dT%H:%M:%SZ')), "
                        "('store_id', ?)",  # which store an export is of
                        [str(SCHEMA_VERSION), secrets.token_hex(8)],
                    )
            except duckdb.Error as e:
                raise StoreError(f"creating {self.path} failed: {e}") from e
            return
        for version in range(current + 1, SCHEMA_VERSION + 1):
            try:
                with transaction(self.con):
                    for stmt in MIGRATIONS[version]:
                        if callable(stmt):
                            stmt(self.con)
                        else:
                            self.con.execute(stmt)
                    self.con.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)]
                    )
                    if version == 1:
                        self.con.execute(
                            "INSERT INTO meta VALUES "
                            "('created_at', strftime(now(), '%Y-%m-%dT%H:%M:%SZ'))"
                        )
            except duckdb.Error as e:
                raise StoreError(f"migrating {self.path} to version {version} failed: {e}") from e

    # -- queries -----------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement against the database and fetch all rows."""
        with self.attached() as con:
            return con.execute(sql, params or []).fetchall()

    def meta(self, key: str) -> str | None:
        """A value of the `meta` table (schema_version, site_hosts, geoip_kind...)."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", [key])
        return str(rows[0][0]) if rows else None

    # -- the writers' lock -------------------------------------------------------

    @contextmanager
    def writer_lock(
        self, timeout: float | None = None, *, nothing: str = "nothing was imported"
    ) -> Iterator[None]:
        """Hold `<db>.lock` so that only one import, tail or upkeep writes this database;
        `nothing` says what did not happen when it stays taken."""
        if self.in_memory:
            yield
            return
        wait = self.lock_timeout if timeout is None else timeout
        fd = open_private(self.lock_path, os.O_RDWR | os.O_CREAT, what="lock file")
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as e:
                    if time.monotonic() >= deadline:
                        raise StoreLockedError(
                            f"another import or tail is writing {self.path} "
                            f"(waited {wait:g}s); {nothing} by this run"
                        ) from e
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

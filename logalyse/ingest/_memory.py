"""Handing memory back to the system between batches: glibc's heaps and DuckDB's own
jemalloc keep what a batch freed, and an import's memory must stay flat."""

from __future__ import annotations

import sys
from collections.abc import Callable

M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter


def glibc(function: str, *args: int) -> None:
    """Call a glibc memory function; elsewhere (macOS, musl), do nothing.

    `mallopt(M_MMAP_THRESHOLD, 128 KiB)` fixes the threshold at its default: glibc
    raises it each time a big block is freed, after which blocks of that size come from
    heaps that keep freed memory, and an import's blocks and DuckDB's buffers pile
    up as resident memory. `malloc_trim(0)` hands what the heaps keep back to the system.
    """
    if sys.platform != "linux":
        return
    import ctypes

    try:
        getattr(ctypes.CDLL(None), function)(*args)
    except (OSError, AttributeError):
        pass


_purge_arenas: Callable[[], None] | None = None


def purge_duckdb_memory() -> None:
    """Hand back to the system the memory DuckDB's allocator keeps from freed blocks.

    DuckDB's Linux builds allocate through their own jemalloc, which keeps freed pages
    ("dirty") for a second and returns them from idle worker threads. An import runs its
    queries with `threads = 1`, so there is no idle worker, and the pages of each batch's
    dropped tables stay resident. This purges every arena through jemalloc's `mallctl`,
    which DuckDB exports; where it does not (another platform or build), it does nothing.
    """
    global _purge_arenas
    if _purge_arenas is None:
        _purge_arenas = _noop
        if sys.platform == "linux":
            import ctypes

            # The compiled module: _duckdb (1.4 on), duckdb.duckdb before.
            lib = sys.modules.get("_duckdb") or sys.modules.get("duckdb.duckdb")
            try:
                mallctl = ctypes.CDLL(lib.__file__).duckdb_je_mallctl  # type: ignore[union-attr]
            except (OSError, AttributeError, TypeError):
                pass
            else:
                mallctl.argtypes = [ctypes.c_char_p] + [ctypes.c_void_p] * 3 + [ctypes.c_size_t]
                _purge_arenas = lambda: mallctl(b"arena.4096.purge", None, None, None, 0)  # noqa: E731
    _purge_arenas()


def _noop() -> None:
    pass

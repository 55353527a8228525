"""logalyse: privacy-respecting visitor analytics from nginx access logs.

The public API, loaded lazily so that `import logalyse` stays light: `ingest` logs into
a `Store`, then `report` on it.

    >>> from logalyse import Store, ingest, report
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "ImportOptions",
    "IngestStats",
    "LogalyseError",
    "Report",
    "SourceStats",
    "Store",
    "StreamInput",
    "compile_format",
    "ingest",
    "report",
]

_WHERE = {
    "ImportOptions": ".ingest",
    "StreamInput": ".ingest",
    "ingest": ".ingest",
    "IngestStats": ".model",
    "SourceStats": ".model",
    "Report": ".model",
    "report": ".reports",
    "LogalyseError": ".errors",
    "Store": ".store",
    "compile_format": ".formats",
}

if TYPE_CHECKING:
    from .errors import LogalyseError
    from .formats import compile_format
    from .ingest import ImportOptions, StreamInput, ingest
    from .model import IngestStats, Report, SourceStats
    from .reports import report
    from .store import Store


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module 'logalyse' has no attribute {name!r}")

"""The `logalyse` command: parse options, call the library, render, map errors to exit codes.

Each command is a thin shell over a library function; heavy modules (duckdb, ua-parser)
are imported inside the commands so that `logalyse --help` starts fast. `app` holds the
group and what commands share; `ingest`, `reports` and `admin` add their commands to it.
"""

from __future__ import annotations

from . import admin, exchange, ingest, reports  # noqa: F401 - they add their commands to `cli`
from .app import CommandFailed, cli, parse_duration, say
from .ingest import _import_options
from .reports import REPORT_HELP

__all__ = ["REPORT_HELP", "CommandFailed", "_import_options", "cli", "parse_duration", "say"]

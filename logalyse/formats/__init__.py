"""Log formats: nginx `log_format` strings, their compilation to SQL, and detection."""

from __future__ import annotations

from .escape import printable, unescape
from .spec import PRESETS, LogFormat, Var, compile_format
from .sql import PARSED_COLUMNS, StreamPrefix, parse_query

__all__ = [
    "PARSED_COLUMNS",
    "PRESETS",
    "LogFormat",
    "StreamPrefix",
    "Var",
    "compile_format",
    "parse_query",
    "printable",
    "unescape",
]

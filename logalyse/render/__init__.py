"""Reports to text: a rich table on a terminal, or JSON, CSV, TSV for pipes.

The only package besides the CLI that knows rich. Every value that came from a log
(paths, referrers, user agents) is shown literally: control characters are made
visible and nothing is read as rich markup.
"""

from __future__ import annotations

from .text import FORMATS, format_value, render

__all__ = ["FORMATS", "format_value", "render"]

"""Reports to text: `render(reports, fmt, out)`, a rich table on a terminal (`table`),
JSON, CSV, TSV for pipes (`data`), or HTML (`html`: a small page per report, and the
dashboard with its charts from `svg`).

The only package besides the CLI that knows rich. Every value that came from a log
(paths, referrers, user agents) is shown literally: control characters are made
visible and nothing is read as rich markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from ..model import Report
from .data import render_delimited, render_json
from .table import format_value, render_table

FORMATS = ("table", "json", "csv", "tsv", "html")


def render(reports: Sequence[Report], fmt: str, out: IO[str], *, color: bool | None = None) -> None:
    """Write `reports` to `out` as a table, json, csv, tsv or html (one of `FORMATS`).

    Example:
        >>> import sys
        >>> from logalyse.model import Report
        >>> render([Report.of_record("now", "Now", [("requests", "Requests", "int", 3)])],
        ...        "json", sys.stdout)
        {
          "requests": 3
        }
    """
    if fmt == "table":
        render_table(reports, out, color=color)
    elif fmt == "json":
        render_json(reports, out)
    elif fmt == "csv":
        render_delimited(reports, out, ",")
    elif fmt == "tsv":
        render_delimited(reports, out, "\t")
    elif fmt == "html":
        from .html import render_html  # Jinja2, loaded only for pages

        render_html(reports, out)
    else:
        raise ValueError(f"unknown format {fmt!r}")


__all__ = ["FORMATS", "format_value", "render", "render_table"]

"""Reports as rich tables, for a terminal (plain text in a pipe): values formatted for
people (1,234; 45.2%; 1m 05s) and bars drawn. Machine formats are in `data`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import IO

from ..formats.escape import printable
from ..model import Column, Report

_BLOCKS = " ▏▎▍▌▋▊▉█"
BAR_WIDTH = 24


def format_value(value: object, kind: str) -> str:
    """A value as a table shows it: 1,234; 45.2%; 1m 05s; 2026-11-01.

    Example:
        >>> format_value(0.4521, "pct"), format_value(65, "seconds"), format_value(12345, "int")
        ('45.2%', '1m 05s', '12,345')
    """
    if value is None:
        return "-" if kind != "text" else ""
    if kind == "int":
        return f"{int(value):,}"  # type: ignore[call-overload]
    if kind == "float":
        return f"{float(value):,.2f}"  # type: ignore[arg-type]
    if kind == "pct":
        return f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]
    if kind == "change":
        return f"{float(value) * 100:+.1f}%"  # type: ignore[arg-type]
    if kind == "seconds":
        s = round(float(value))  # type: ignore[arg-type]
        if s < 60:
            return f"{s}s"
        if s < 3600:
            return f"{s // 60}m {s % 60:02d}s"
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if kind == "datetime" and isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return printable(str(value))


def bar(value: float, top: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar, in eighths of a character.

    Example:
        >>> bar(1, 2, 4)
        '██'
    """
    if not top or value <= 0:
        return ""
    eighths = max(1, round(value / top * width * 8))
    return "█" * (eighths // 8) + (_BLOCKS[eighths % 8] if eighths % 8 else "")


def _cells(report: Report) -> list[list[str]]:
    """Every row as display strings (bars drawn, mixed columns by row kind)."""
    cols = report.columns
    tops: dict[int, float] = {}
    for i, c in enumerate(cols):
        if c.kind == "bar" and c.of:
            j = next(k for k, o in enumerate(cols) if o.key == c.of)
            tops[i] = max((float(r[j] or 0) for r in report.rows), default=0.0)  # type: ignore[arg-type]
    out = []
    for n, row in enumerate(report.rows):
        cells = []
        for i, c in enumerate(cols):
            if c.kind == "bar" and c.of:
                j = next(k for k, o in enumerate(cols) if o.key == c.of)
                cells.append(bar(float(row[j] or 0), tops[i]))  # type: ignore[arg-type]
            elif c.kind == "mixed":
                kind = report.row_kinds[n] if n < len(report.row_kinds) else "text"
                cells.append(format_value(row[i], kind))
            else:
                cells.append(format_value(row[i], c.kind))
        out.append(cells)
    return out


def _numeric(c: Column) -> bool:
    return c.kind in ("int", "float", "pct", "seconds", "mixed", "change")


def _pipe_width() -> int:
    """A pipe's table width: $COLUMNS when set (a script that knows its terminal), else 120."""
    import os

    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and 40 <= int(columns) <= 1000 else 120


def render_table(reports: Sequence[Report], out: IO[str], *, color: bool | None = None) -> None:
    """Rich tables (no colour in a pipe); a line of explanation instead of an empty table."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(
        file=out,
        highlight=False,
        emoji=False,
        markup=False,
        no_color=None if color is None else not color,
        force_terminal=color,
        width=None if out.isatty() else _pipe_width(),
    )
    for n, report in enumerate(reports):
        if n:
            console.print()
        if not report.rows:
            console.print(Text(printable(f"{report.title}: {report.empty}")))
            continue
        table = Table(
            title=Text(printable(report.title), style="bold"),
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_header=not report.single or len(report.columns) > 2,  # overview's periods
            pad_edge=False,
        )
        rows = list(_cells(report))
        last = len(report.columns) - 1
        # A trailing list of paths (top landing pages) is cut with an ellipsis in what the
        # other columns leave, never wrapped mid-path (all of it is in --format json/csv).
        cut = last > 0 and not _numeric(report.columns[last]) and report.columns[last].kind != "bar"
        room = None
        if cut:
            widths = [
                max([len(c.label)] + [len(r[i]) for r in rows]) + 3
                for i, c in enumerate(report.columns[:last])
            ]
            room = max(20, console.width - sum(widths) - 2)
        for i, c in enumerate(report.columns):
            trailing = cut and i == last
            table.add_column(
                Text(c.label),
                justify="right" if _numeric(c) else "left",
                overflow="ellipsis" if trailing else "fold",
                style="cyan" if c.kind == "bar" else None,
                no_wrap=c.kind == "bar" or trailing,
                max_width=room if trailing else None,
            )
        for cells in rows:
            table.add_row(*(Text(v) for v in cells))
        console.print(table)
        for note in report.notes:
            console.print(Text(printable(note), style="dim"))

"""HTML: the dashboard (one self-contained page) and any report as a small page that reads
well in a mail client. Templates in `templates/`, autoescaped (Jinja2); charts from `svg`.

Nothing in a page runs or loads anything: no script, no event attribute, no external URL,
and a Content-Security-Policy that forbids them all, so that even an escaping bug in log
text (attacker-written) cannot run code. Text from logs is escaped, and its control
characters made visible.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from ..formats.escape import printable
from ..model import Column, Dashboard, Report, Tile
from . import svg

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS = tuple(f"{h:02d}h" for h in range(24))


@lru_cache(maxsize=1)
def _env() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("logalyse", "render/templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["show"] = lambda v: printable(str(v))
    env.globals.update(cell=_cell, numeric=_numeric, bar_width=_bar_width, change=_change)
    return env


def _cell(value: object, kind: str) -> str:
    from .table import format_value

    return format_value(value, kind)


def _numeric(c: Column) -> bool:
    return c.kind in ("int", "float", "pct", "seconds", "mixed", "change")


def _bar_width(report: Report, column: Column, row: Sequence[object]) -> str:
    """A bar's width, in percent of the column's largest value."""
    i = next(k for k, c in enumerate(report.columns) if c.key == column.of)
    top = max((float(r[i] or 0) for r in report.rows), default=0.0)  # type: ignore[arg-type]
    value = float(row[i] or 0)  # type: ignore[arg-type]
    return f"{100 * value / top:.1f}" if top else "0"


def _change(t: Tile) -> dict[str, str]:
    """The tile's change against the previous period: text and whether it is good news."""
    try:
        now, before = float(t.value), float(t.previous)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        text = "none in the period before" if t.compared else "no earlier period to compare"
        return {"text": text, "css": "same"}
    if t.kind == "pct":
        diff = (now - before) * 100
        text = f"{diff:+.1f} points vs {_cell(before, t.kind)}"
    elif before:
        diff = (now - before) / before * 100
        text = f"{diff:+.1f}% vs {_cell(before, t.kind)}"
    else:
        return {"text": "none in the period before" if now else "none before either", "css": "same"}
    if abs(diff) < 0.05:
        return {"text": text, "css": "same"}
    return {"text": text, "css": "good" if (diff > 0) == t.up_is_good else "bad"}


def _css() -> str:
    from importlib import resources

    return resources.files("logalyse.render").joinpath("templates/base.css").read_text("utf-8")


def render_dashboard(d: Dashboard, out: IO[str]) -> None:
    """Write the dashboard page."""
    chart = svg.lines(
        d.series.labels,
        [("visitors", d.series.visitors), ("pageviews", d.series.pageviews)],
        title=f"Visitors and pageviews per {d.series.unit}",
    )
    has_heat = any(v for row in d.heatmap for v in row)
    heatmap = (
        svg.grid(WEEKDAYS, HOURS, d.heatmap, unit="sessions", title="Sessions by weekday and hour")
        if has_heat
        else None
    )
    out.write(
        _env()
        .get_template("dashboard.html")
        .render(d=d, css=_css(), chart=chart, heatmap=heatmap, weekdays=WEEKDAYS, hours=HOURS)
    )


def render_html(reports: Sequence[Report], out: IO[str]) -> None:
    """Write reports as a small page with inline styles (a mail client's reading)."""
    title = reports[0].title if reports else "logalyse"
    out.write(_env().get_template("report.html").render(reports=reports, title=title))


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` at once: written to a temporary file in the same
    directory, flushed to disk, then renamed over it, so that a web server serving `path`
    never sends half a page. The file is readable by all (as a page is) unless the umask
    says otherwise; a failure leaves the old file and no temporary one.
    """
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

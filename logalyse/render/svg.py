"""Charts as inline SVG, made in Python: columns over time, two series as lines, a grid of
cells (weekday x hour). No script, no external reference: colours come from the page's
CSS (classes and `currentColor`), so light and dark themes and print follow. Every mark
has a `<title>` (a tooltip without JavaScript), and the page shows the numbers as text too.

Labels are escaped here; values are numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

_W, _H = 720, 180  # the viewBox: charts scale to their container's width
_PAD_L, _PAD_B, _PAD_T = 44, 22, 8


def _nice_max(value: float) -> float:
    """The top of an axis: 1, 2 or 5 times a power of ten, at least `value`.

    Example:
        >>> _nice_max(0), _nice_max(7), _nice_max(1234)
        (1.0, 10.0, 2000.0)
    """
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for m in (1, 2, 5, 10):
        if m * step >= value:
            return float(m * step)
    return 10 * step


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:,.1f}"


def _axis(top: float, label: str) -> list[str]:
    plot_h = _H - _PAD_B - _PAD_T
    out = []
    for frac in (0, 0.5, 1):
        y = _PAD_T + plot_h * (1 - frac)
        out.append(
            f'<line class="gridline" x1="{_PAD_L}" x2="{_W}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{_PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_fmt(top * frac))}</text>"
        )
    out.append(f'<text class="tick" x="4" y="{_PAD_T + 10}">{escape(label)}</text>')
    return out


def _every(n: int, room: int = 12) -> int:
    """Label every k-th of n columns so that at most `room` labels show."""
    return max(1, -(-n // room))


def columns(labels: Sequence[str], values: Sequence[float], *, unit: str, title: str) -> Markup:
    """Vertical bars, one per label (days or hours), with the value in each bar's tooltip.

    Example:
        >>> svg = columns(["2026-11-01"], [3], unit="visitors", title="t")
        >>> "<title>2026-11-01: 3 visitors</title>" in svg
        True
    """
    n = max(1, len(values))
    top = _nice_max(max(values, default=0))
    plot_w, plot_h = _W - _PAD_L, _H - _PAD_B - _PAD_T
    slot = plot_w / n
    parts = _axis(top, unit)
    step = _every(n)
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * v / top
        x = _PAD_L + i * slot + slot * 0.12
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{_PAD_T + plot_h - h:.1f}" '
            f'width="{slot * 0.76:.1f}" height="{h:.1f}">'
            f"<title>{escape(label)}: {escape(_fmt(v))} {escape(unit)}</title></rect>"
        )
        if i % step == 0:
            parts.append(
                f'<text class="tick" x="{_PAD_L + (i + 0.5) * slot:.1f}" y="{_H - 6}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    return _svg(parts, title)


def lines(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, title: str
) -> Markup:
    """One line per series over the same labels (e.g. visitors and pageviews per day),
    each point with its value as a tooltip; the first series is drawn with `.s0`, the
    next with `.s1`."""
    n = len(labels)
    top = _nice_max(max((max(vs, default=0) for _, vs in series), default=0))
    plot_w, plot_h = _W - _PAD_L, _H - _PAD_B - _PAD_T
    slot = plot_w / max(1, n)
    parts = _axis(top, "")
    for k, (name, values) in enumerate(series):
        points = [
            (_PAD_L + (i + 0.5) * slot, _PAD_T + plot_h * (1 - v / top))
            for i, v in enumerate(values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline class="line s{k}" points="{path}"/>')
        for (x, y), label, v in zip(points, labels, values, strict=True):
            parts.append(
                f'<circle class="dot s{k}" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                f"<title>{escape(label)}: {escape(_fmt(v))} {escape(name)}</title></circle>"
            )
    step = _every(n)
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(
                f'<text class="tick" x="{_PAD_L + (i + 0.5) * slot:.1f}" y="{_H - 6}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    return _svg(parts, title)


def grid(
    rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[float]], *, unit: str,
    title: str,
) -> Markup:  # fmt: skip
    """A heatmap: a cell per (row, column), darker for more, the value in its tooltip.

    Example:
        >>> "Mon 09h: 5 sessions" in grid(["Mon"], ["09h"], [[5]], unit="sessions", title="t")
        True
    """
    top = max((v for row in values for v in row), default=0) or 1
    cell_w = (_W - _PAD_L) / max(1, len(cols))
    cell_h = (_H - _PAD_B - _PAD_T) / max(1, len(rows))
    parts = []
    for r, (name, row) in enumerate(zip(rows, values, strict=True)):
        y = _PAD_T + r * cell_h
        parts.append(
            f'<text class="tick" x="{_PAD_L - 6}" y="{y + cell_h * 0.7:.1f}" '
            f'text-anchor="end">{escape(name)}</text>'
        )
        for c, v in enumerate(row):
            opacity = 0.06 + 0.94 * (v / top) if v else 0.03
            parts.append(
                f'<rect class="cell" x="{_PAD_L + c * cell_w:.1f}" y="{y:.1f}" '
                f'width="{cell_w - 1:.1f}" height="{cell_h - 1:.1f}" '
                f'fill-opacity="{opacity:.2f}"><title>{escape(name)} {escape(cols[c])}: '
                f"{escape(_fmt(v))} {escape(unit)}</title></rect>"
            )
    step = _every(len(cols), 8)
    for c, name in enumerate(cols):
        if c % step == 0:
            parts.append(
                f'<text class="tick" x="{_PAD_L + (c + 0.5) * cell_w:.1f}" y="{_H - 6}" '
                f'text-anchor="middle">{escape(name)}</text>'
            )
    return _svg(parts, title)


def _svg(parts: list[str], title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
        f'preserveAspectRatio="xMidYMid meet">'
        f"<title>{escape(title)}</title>{''.join(parts)}</svg>"
    )

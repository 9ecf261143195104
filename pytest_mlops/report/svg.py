"""Small SVG charts drawn in Python for the HTML report: no JavaScript, no network, no fonts.

Each function returns one ``<svg>`` element as text. Colours come from :data:`PALETTE` and the
charts carry ``role="img"`` and a ``<title>`` so they read as images to assistive tools.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Bar", "Series", "bars", "forest", "nice_ticks"]

PALETTE = {
    "reference": "#4c78a8",
    "current": "#f58518",
    "candidate": "#4c78a8",
    "baseline": "#9d9d9d",
    "passed": "#2e7d32",
    "failed": "#c62828",
    "inconclusive": "#ef8f00",
    "grid": "#e3e3e3",
    "axis": "#555555",
    "bound": "#c62828",
}

_FONT = 'font-family="system-ui,sans-serif" font-size="11"'


@dataclass(frozen=True)
class Series:
    """One series of a bar chart: a name, a colour and one value per category."""

    name: str
    color: str
    values: Sequence[float]


@dataclass(frozen=True)
class Bar:
    """One row of a forest plot: a point estimate and its interval."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    color: str = PALETTE["candidate"]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _num(value: float) -> str:
    return f"{value:.4g}"


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {_FONT}><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def bars(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 320,
    height: int = 150,
    y_label: str = "",
    max_labels: int = 6,
) -> str:
    """Grouped vertical bars: one group per category, one bar per series, a legend on top."""
    left, right, top, bottom = 40, 8, 20, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = [v for s in series for v in s.values if math.isfinite(v)]
    y_max = max([*finite, 0.0]) or 1.0
    ticks = nice_ticks(0.0, y_max, 4)
    y_top = max(ticks[-1] if ticks else y_max, y_max)
    body: list[str] = []
    for tick in ticks:
        y = top + plot_h * (1 - tick / y_top)
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{PALETTE["grid"]}"/>'
            f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{_num(tick)}</text>'
        )
    n = max(len(categories), 1)
    group_w = plot_w / n
    bar_w = max(group_w * 0.8 / max(len(series), 1), 0.5)
    for i, category in enumerate(categories):
        x0 = left + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            value = s.values[i] if i < len(s.values) else float("nan")
            if not math.isfinite(value) or value <= 0:
                continue
            h = plot_h * value / y_top
            body.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{s.color}">'
                f"<title>{escape(category)} {escape(s.name)}: {_num(value)}</title></rect>"
            )
    longest = max((len(c) for c in categories), default=1)
    step = max(1, math.ceil(n / max_labels))
    while step < n and group_w * step < min(longest, 12) * 7.0:
        step += 1  # fewer labels rather than overlapping ones
    chars = max(3, int(group_w * step / 7.0) - 1)
    for i in range(0, n, step):
        x = left + (i + 0.5) * group_w
        label = escape(_short(categories[i], min(chars, 12)))
        body.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 13}" text-anchor="middle">{label}</text>'
        )
    body.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{PALETTE["axis"]}"/>'
    )
    if y_label:
        body.append(f'<text x="4" y="12" fill="{PALETTE["axis"]}">{escape(y_label)}</text>')
    body += _legend(series, width - right, 12)
    return _svg(width, height, title, body)


def _legend(series: Sequence[Series], x_right: float, y: float) -> list[str]:
    out: list[str] = []
    x = x_right
    for s in reversed(series):
        text_w = 6.5 * len(s.name)
        x -= text_w
        out.append(f'<text x="{x:.1f}" y="{y}">{escape(s.name)}</text>')
        x -= 12
        out.append(f'<rect x="{x:.1f}" y="{y - 8}" width="9" height="9" fill="{s.color}"/>')
        x -= 10
    return out


def forest(
    rows: Sequence[Bar],
    *,
    title: str,
    width: int = 640,
    reference: float | None = 0.0,
    bounds: Sequence[float] = (),
    label_width: int = 170,
) -> str:
    """A forest plot: one row per estimate with its interval, a reference line and bound lines."""
    row_h, top, bottom = 22, 8, 24
    height = top + bottom + row_h * max(len(rows), 1)
    points = [
        v for r in rows for v in (r.value, r.low, r.high) if v is not None and math.isfinite(v)
    ]
    points += [b for b in bounds if math.isfinite(b)]
    if reference is not None:
        points.append(reference)
    lo, hi = (min(points), max(points)) if points else (0.0, 1.0)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 0.1
    axis = _Axis(label_width, width - label_width - 60, lo - pad, hi + pad)
    bottom_y = top + row_h * len(rows)
    body = _forest_lines(axis, top, bottom_y, reference, bounds)
    for i, row in enumerate(rows):
        body += _forest_row(axis, row, top + row_h * (i + 0.5), width - 60 + 6)
    return _svg(width, height, title, body)


@dataclass(frozen=True)
class _Axis:
    """A horizontal value axis: *left* and *width* in pixels, showing values *lo* to *hi*."""

    left: float
    width: float
    lo: float
    hi: float

    def x(self, value: float) -> float:
        return self.left + self.width * (value - self.lo) / (self.hi - self.lo)


def _forest_lines(
    axis: _Axis, top: int, bottom_y: int, reference: float | None, bounds: Sequence[float]
) -> list[str]:
    """The grid with its tick labels, the reference line and a dashed line per bound."""
    body: list[str] = []
    for tick in nice_ticks(axis.lo, axis.hi, 5):
        x = axis.x(tick)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom_y}" stroke="{PALETTE["grid"]}"/>'
            f'<text x="{x:.1f}" y="{bottom_y + 14}" text-anchor="middle">{_num(tick)}</text>'
        )
    if reference is not None:
        x = axis.x(reference)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom_y}" '
            f'stroke="{PALETTE["axis"]}" stroke-width="1.2"/>'
        )
    for bound in bounds:
        x = axis.x(bound)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom_y}" '
            f'stroke="{PALETTE["bound"]}" stroke-dasharray="4 3"><title>bound {_num(bound)}'
            "</title></line>"
        )
    return body


def _forest_row(axis: _Axis, row: Bar, y: float, value_x: float) -> list[str]:
    """One row: its label, its interval as a line and its estimate as a dot, written out right."""
    body = [
        f'<text x="{axis.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
        f"{escape(_short(row.label, 26))}</text>"
    ]
    shown = ""
    if row.low is not None and row.high is not None:
        shown = f" [{_num(row.low)}, {_num(row.high)}]"
        body.append(
            f'<line x1="{axis.x(row.low):.1f}" x2="{axis.x(row.high):.1f}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="{row.color}" stroke-width="2"/>'
        )
    if math.isfinite(row.value):
        body.append(
            f'<circle cx="{axis.x(row.value):.1f}" cy="{y:.1f}" r="4.5" fill="{row.color}">'
            f"<title>{escape(row.label)}: {_num(row.value)}{shown}</title></circle>"
            f'<text x="{value_x}" y="{y + 4:.1f}">{_num(row.value)}</text>'
        )
    return body


def _short(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"

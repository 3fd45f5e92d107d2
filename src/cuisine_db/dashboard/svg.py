"""Charts drawn on the server as SVG markup: no script, nothing fetched. Every text that reaches the markup is
escaped here (the templates mark the result safe)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

INK = "#1f2933"
MUTED = "#7b8794"
LINE = "#3e6bb0"
GRID = "#e4e7eb"


def _number(value: float) -> str:
    return f"{value:.1f}"


def sparkline(values: Sequence[float], *, width: int = 160, height: int = 36, label: str = "") -> Markup:
    """A small line over time (a table's size across the snapshots); one point draws a flat line."""
    if not values:
        return Markup("")
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    points = [(i * step, height - 3 - (v - low) / span * (height - 6)) for i, v in enumerate(values)]
    if len(points) == 1:
        points.append((width, points[0][1]))
    path = " ".join(f"{_number(x)},{_number(y)}" for x, y in points)
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}"><polyline fill="none" stroke="{LINE}" stroke-width="1.5" '
        f'points="{path}"/></svg>')


def line_chart(points: Sequence[tuple[datetime, float]], *, unit: str, label: str, width: int = 640,
               height: int = 180) -> Markup:
    """Values over time with the first and last value and date marked (database size by day)."""
    if not points:
        return Markup("")
    left, right, top, bottom = 8, 8, 16, 24
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or max(high, 1.0) * 0.1
    low -= span * 0.1
    span *= 1.2
    inner_w, inner_h = width - left - right, height - top - bottom
    step = inner_w / max(len(points) - 1, 1)
    xy = [(left + i * step, top + inner_h - (v - low) / span * inner_h) for i, (_, v) in enumerate(points)]
    if len(xy) == 1:
        xy.append((left + inner_w, xy[0][1]))
    path = " ".join(f"{_number(x)},{_number(y)}" for x, y in xy)
    first, last = points[0], points[-1]
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'preserveAspectRatio="none">'
        f'<line x1="{left}" y1="{top + inner_h}" x2="{width - right}" y2="{top + inner_h}" stroke="{GRID}"/>'
        f'<polyline fill="none" stroke="{LINE}" stroke-width="2" points="{path}"/>'
        f'<text x="{left}" y="{height - 6}" fill="{MUTED}" font-size="11">{escape(f"{first[0]:%Y-%m-%d}")}</text>'
        f'<text x="{width - right}" y="{height - 6}" fill="{MUTED}" font-size="11" text-anchor="end">'
        f'{escape(f"{last[0]:%Y-%m-%d}")}: {escape(_human(last[1], unit))}</text></svg>')


def _human(value: float, unit: str) -> str:
    if unit != "bytes":
        return f"{value:,.0f} {unit}"
    for name, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= size:
            return f"{value / size:,.1f} {name}"
    return f"{value:,.0f} B"


def bars(counts: dict[str, int], *, label: str, width: int = 640) -> Markup:
    """Horizontal bars, one per key (connections by state), the count at the end of each."""
    if not counts:
        return Markup("")
    row, gap, name_w = 20, 6, 170
    height = len(counts) * (row + gap)
    most = max(counts.values()) or 1
    parts = []
    for i, (name, count) in enumerate(counts.items()):
        y = i * (row + gap)
        length = max(2.0, (width - name_w - 50) * count / most)
        parts.append(
            f'<text x="0" y="{y + 14}" fill="{INK}" font-size="12">{escape(name[:28])}</text>'
            f'<rect x="{name_w}" y="{y}" width="{_number(length)}" height="{row}" fill="{LINE}" rx="2"/>'
            f'<text x="{_number(name_w + length + 6)}" y="{y + 14}" fill="{INK}" font-size="12">{count}</text>')
    return Markup(f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
                  + "".join(parts) + "</svg>")


def timeline(start: datetime | None, now: datetime, marks: Sequence[tuple[datetime, str]], *,
             archive_end: datetime | None, label: str, width: int = 640, height: int = 78) -> Markup:
    """The recovery window: a band from the oldest restorable point to the archive's end (or now), backups as ticks,
    and the stretch since the last archived WAL drawn apart (what a failure now would lose)."""
    if start is None:
        return Markup("")
    left, right = 8, 8
    inner = width - left - right
    total = max((now - start).total_seconds(), 1.0)

    def x(moment: datetime) -> float:
        return left + max(0.0, min(1.0, (moment - start).total_seconds() / total)) * inner

    covered_to = archive_end if archive_end is not None and archive_end < now else now
    parts = [
        f'<rect x="{left}" y="22" width="{_number(x(covered_to) - left)}" height="18" fill="{LINE}" rx="3"/>',
    ]
    if covered_to < now:
        parts.append(f'<rect x="{_number(x(covered_to))}" y="22" width="{_number(x(now) - x(covered_to))}" '
                     f'height="18" fill="none" stroke="{MUTED}" stroke-dasharray="3 2" rx="3"/>')
    for moment, name in marks:
        if moment >= start:
            parts.append(f'<line x1="{_number(x(moment))}" y1="16" x2="{_number(x(moment))}" y2="46" '
                         f'stroke="{INK}" stroke-width="1.5"><title>{escape(name)}</title></line>')
    parts.append(f'<text x="{left}" y="62" fill="{MUTED}" font-size="11">{escape(f"{start:%Y-%m-%d %H:%M}")} UTC'
                 f'</text><text x="{width - right}" y="62" fill="{MUTED}" font-size="11" text-anchor="end">now '
                 f'{escape(f"{now:%H:%M}")} UTC</text>')
    return Markup(f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
                  f'preserveAspectRatio="none">' + "".join(parts) + "</svg>")

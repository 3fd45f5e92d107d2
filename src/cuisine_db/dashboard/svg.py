"""Charts drawn on the server as SVG markup: no script, nothing fetched. Every text that reaches the markup is
escaped here (the templates mark the result safe)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

from cuisine_db.humanize import size

INK = "#1f2933"
MUTED = "#7b8794"
LINE = "#3e6bb0"
GRID = "#e4e7eb"


def _number(value: float) -> str:
    return f"{value:.1f}"


def _polyline(points: list[tuple[float, float]], width: int) -> str:
    """The points as a polyline's `points` attribute; a single point is drawn as a flat line across the box."""
    if len(points) == 1:
        points = [*points, (width, points[0][1])]
    return " ".join(f"{_number(x)},{_number(y)}" for x, y in points)


def sparkline(values: Sequence[float], *, width: int = 160, height: int = 36, label: str = "") -> Markup:
    """A small line over time (a table's size across the snapshots); one point draws a flat line."""
    if not values:
        return Markup()
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    points = [(i * step, height - 3 - (v - low) / span * (height - 6)) for i, v in enumerate(values)]
    path = _polyline(points, width)
    return Markup(  # noqa: S704 - every text in it went through escape()
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}"><polyline fill="none" stroke="{LINE}" stroke-width="1.5" '
        f'points="{path}"/></svg>')


def line_chart(points: Sequence[tuple[datetime, float]], *, label: str, width: int = 640, height: int = 120,
               timed: bool = False) -> Markup:
    """Values over time (database size by day), stretched to the box's width; its labels are the page's text.
    Points are evenly spaced, or with `timed` placed by their time (readings taken at uneven intervals)."""
    if not points:
        return Markup()
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or max(high, 1.0) * 0.1
    low -= span * 0.1
    span *= 1.2
    step = width / max(len(points) - 1, 1)
    first, last = points[0][0], points[-1][0]
    spread = (last - first).total_seconds()
    xy = [((t - first).total_seconds() / spread * width if timed and spread > 0 else i * step,
           height - (v - low) / span * height) for i, (t, v) in enumerate(points)]
    path = _polyline(xy, width)
    return Markup(  # noqa: S704 - every text in it went through escape()
        f'<svg class="chart stretch" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'preserveAspectRatio="none"><line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="{GRID}" '
        f'vector-effect="non-scaling-stroke"/><polyline fill="none" stroke="{LINE}" stroke-width="2" '
        f'vector-effect="non-scaling-stroke" points="{path}"/></svg>')


def _human(value: float, unit: str) -> str:
    if unit != "bytes":
        return f"{value:,.0f} {unit}"
    return size(value)


def bars(counts: dict[str, int], *, label: str) -> Markup:
    """One row per key (connections by state): its name, a bar as long as its share of the largest, the count.
    The names are the page's text, so they stay readable at any width."""
    if not counts:
        return Markup()
    most = max(counts.values()) or 1
    rows = []
    for name, count in counts.items():
        length = max(1.0, 100 * count / most)
        rows.append(f'<tr><td>{escape(name)}</td><td class="barcell"><svg class="meter" viewBox="0 0 100 10" '
                    f'preserveAspectRatio="none" aria-hidden="true"><rect x="0" y="0" width="{_number(length)}" '
                    f'height="10" fill="{LINE}"/></svg></td><td class="n">{count}</td></tr>')
    return Markup(  # noqa: S704 - every text in it went through escape()
        f'<table class="bars" aria-label="{escape(label)}">' + "".join(rows) + "</table>")


def timeline(start: datetime | None, now: datetime, marks: Sequence[tuple[datetime, str]], *,
             archive_end: datetime | None, label: str, width: int = 1000, height: int = 40) -> Markup:
    """The recovery window: a band from the oldest restorable point to the last archived WAL, backups as ticks, and
    the stretch since then drawn dashed (what a failure now would lose). Stretched to the box's width; the dates
    beneath it are the page's text."""
    if start is None:
        return Markup()
    total = max((now - start).total_seconds(), 1.0)

    def x(moment: datetime) -> float:
        return max(0.0, min(1.0, (moment - start).total_seconds() / total)) * width

    covered_to = archive_end if archive_end is not None and start <= archive_end < now else now
    if archive_end is not None and archive_end < start:
        covered_to = start
    parts = [f'<rect x="0" y="10" width="{_number(max(x(covered_to), 2.0))}" height="20" fill="{LINE}"/>']
    if covered_to < now:
        parts.append(f'<rect x="{_number(x(covered_to))}" y="10" width="{_number(width - x(covered_to))}" '
                     f'height="20" fill="none" stroke="{MUTED}" stroke-dasharray="4 3" '
                     f'vector-effect="non-scaling-stroke"/>')
    for moment, name in marks:
        if moment >= start:
            parts.append(f'<line x1="{_number(x(moment))}" y1="2" x2="{_number(x(moment))}" y2="38" stroke="{INK}" '
                         f'stroke-width="2" vector-effect="non-scaling-stroke"><title>{escape(name)}</title></line>')
    head = (f'<svg class="chart band" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
            'preserveAspectRatio="none">')
    return Markup(head + "".join(parts) + "</svg>")  # noqa: S704 - every text in it went through escape()

"""Storage growth (db-growth): size snapshots over time, growth per table, and days until the disk is full."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from cuisine_db.config import Environment
from cuisine_db.humanize import size

if TYPE_CHECKING:
    from cuisine_db.monitor.store import SizeSnapshot

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Forecast:
    """The recent growth rate (least squares over the window) and how long the free space lasts at it."""

    rate_bytes_per_day: float | None
    free_bytes: int | None
    days_until_full: float | None
    points: int
    span_days: float
    note: str


def forecast(points: Sequence[tuple[float, int]], free_bytes: int | None, *, recent_days: float = 7.0) -> Forecast:
    """Fit bytes = a + b·t to the snapshots of the last `recent_days` and divide the free space by the slope.

    `points` are (unix time, database bytes), any order. A straight line through the recent window is
    what an operator would draw by hand, and it is not thrown by one noisy snapshot as two endpoints are.
    """
    if not points:
        return Forecast(None, free_bytes, None, 0, 0.0, "no snapshots yet: each db-monitor run records one")
    ordered = sorted(points)
    newest = ordered[-1][0]
    recent = [(t, b) for t, b in ordered if t >= newest - recent_days * DAY]
    span = (recent[-1][0] - recent[0][0]) / DAY
    if len(recent) < 2 or span < 1 / 24:
        return Forecast(None, free_bytes, None, len(recent), span,
                        "not enough history: snapshots must span at least an hour")
    mean_t = sum(t for t, _ in recent) / len(recent)
    mean_b = sum(b for _, b in recent) / len(recent)
    spread = sum((t - mean_t) ** 2 for t, _ in recent)
    slope = sum((t - mean_t) * (b - mean_b) for t, b in recent) / spread  # bytes per second
    rate = slope * DAY
    if free_bytes is None:
        return Forecast(rate, None, None, len(recent), span,
                        "free space unknown: a remote server's disk size goes in monitoring.disk_bytes")
    if rate <= 0:
        return Forecast(rate, free_bytes, None, len(recent), span, "not growing")
    return Forecast(rate, free_bytes, free_bytes / rate, len(recent), span,
                    f"at {size(rate)}/day over the last {span:.1f} days")


def free_bytes(snapshot: SizeSnapshot, env: Environment) -> int | None:
    """Free space at a snapshot: measured for local clusters, from monitoring.disk_bytes for remote ones."""
    if snapshot.fs_free_bytes is not None:
        return snapshot.fs_free_bytes
    if env.monitoring.disk_bytes is not None:
        return max(env.monitoring.disk_bytes - snapshot.database_bytes, 0)
    return None


@dataclass(frozen=True, slots=True)
class TableGrowth:
    schema: str
    name: str
    first_bytes: int
    last_bytes: int
    growth_bytes: int
    bytes_per_day: float
    series: list[int]


@dataclass(frozen=True, slots=True)
class GrowthReport:
    env: str
    days: int
    snapshots: int
    daily: list[tuple[date, int]]
    tables: list[TableGrowth]
    forecast: Forecast


def daily_sizes(snapshots: Sequence[SizeSnapshot]) -> list[tuple[date, int]]:
    """The last database size seen each UTC day."""
    days: dict[date, int] = {}
    for snapshot in sorted(snapshots, key=lambda s: s.taken_at):
        days[datetime.fromtimestamp(snapshot.taken_at, UTC).date()] = snapshot.database_bytes
    return sorted(days.items())


def table_growth(series: dict[tuple[str, str], list[tuple[float, int]]], limit: int) -> list[TableGrowth]:
    """Tables ordered by how much they grew over their series, largest growth first."""
    grown = []
    for (schema, name), points in series.items():
        first_t, first_b = points[0]
        last_t, last_b = points[-1]
        days = (last_t - first_t) / DAY
        grown.append(TableGrowth(schema, name, first_b, last_b, last_b - first_b,
                                 (last_b - first_b) / days if days > 0 else 0.0, [b for _, b in points]))
    grown.sort(key=lambda g: (g.growth_bytes, g.last_bytes), reverse=True)
    return grown[:limit]


"""The growth forecast from synthetic snapshots: days until full within 5%, and the store that keeps them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cuisine_db.monitor.growth import DAY, daily_sizes, forecast, table_growth
from cuisine_db.monitor.store import SizeSnapshot, Store, TableSnapshot

GB = 1024**3
NOW = 1_750_000_000.0


def hourly(days: int, start_bytes: float, per_day: float, noise: float = 0.0, seed: int = 1) -> list[tuple[float, int]]:
    rng = random.Random(seed)
    return [(NOW - (days * 24 - hour) * 3600, int(start_bytes + per_day * hour / 24 + rng.gauss(0, noise)))
            for hour in range(days * 24 + 1)]


@pytest.mark.parametrize(("per_day", "free", "noise"), [(1 * GB, 50 * GB, 0.0), (2 * GB, 30 * GB, 0.2 * GB),
                                                         (50 * 1024**2, 20 * GB, 5 * 1024**2)])
def test_days_until_full_is_within_five_percent(per_day: float, free: int, noise: float) -> None:
    result = forecast(hourly(14, 100 * GB, per_day, noise), free)
    expected = free / per_day
    assert result.days_until_full is not None
    assert abs(result.days_until_full - expected) / expected < 0.05
    assert result.rate_bytes_per_day is not None and abs(result.rate_bytes_per_day - per_day) / per_day < 0.05
    assert result.points == 7 * 24 + 1 and result.span_days == pytest.approx(7.0)


def test_the_recent_rate_counts_not_the_old_one() -> None:
    points, size = [], 10.0 * GB
    for hour in range(30 * 24 + 1):
        points.append((NOW - (30 * 24 - hour) * 3600, int(size)))
        size += (0.1 * GB if hour < 23 * 24 else 3 * GB) / 24  # slow for 23 days, then 3 GB a day
    result = forecast(points, 60 * GB)
    assert result.days_until_full == pytest.approx(20.0, rel=0.05)


def test_too_little_history_or_no_growth_gives_no_date() -> None:
    assert forecast([], 10 * GB).days_until_full is None
    short = forecast([(NOW, GB), (NOW + 600, 2 * GB)], 10 * GB)
    assert short.days_until_full is None and "at least an hour" in short.note
    shrinking = forecast(hourly(3, 10 * GB, -0.5 * GB), 10 * GB)
    assert shrinking.days_until_full is None and shrinking.note == "not growing"
    remote = forecast(hourly(3, 10 * GB, GB), None)
    assert remote.days_until_full is None and "disk_bytes" in remote.note


def test_daily_sizes_and_table_growth() -> None:
    snapshots = [SizeSnapshot(NOW + i * 8 * 3600, (10 + i) * GB, None, None) for i in range(6)]
    days = daily_sizes(snapshots)
    assert len(days) in (2, 3) and days[-1][1] == 15 * GB
    series = {("public", "executions"): [(NOW, GB), (NOW + DAY, 3 * GB)], ("public", "users"): [(NOW, GB),
                                                                                              (NOW + DAY, GB)]}
    top = table_growth(series, limit=1)
    assert [(t.name, t.growth_bytes, t.bytes_per_day) for t in top] == [("executions", 2 * GB, 2 * GB)]


def test_the_store_keeps_every_snapshot_of_a_week_then_one_a_day(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "monitor.sqlite")
    start = NOW - 20 * DAY
    for hour in range(20 * 24 + 1):
        store.add_snapshot(SizeSnapshot(start + hour * 3600, hour, None, None,
                                        [TableSnapshot("public", "t", hour, hour)]))
    kept = store.snapshots(0)
    old = [s for s in kept if s.taken_at < NOW - 7 * DAY]
    recent = [s for s in kept if s.taken_at >= NOW - 7 * DAY]
    assert len(recent) == 7 * 24 + 1
    assert 13 <= len(old) <= 14  # one per UTC day
    assert len(store.table_series(0)[("public", "t")]) == len(kept)  # tables go with their snapshot
    assert (tmp_path / "state" / "monitor.sqlite").stat().st_mode & 0o777 == 0o600
    assert not store.snapshot_due(3600, now=NOW + 60) and store.snapshot_due(3600, now=NOW + 3600)

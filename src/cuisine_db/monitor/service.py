"""db-monitor and db-growth: read the figures, judge them, remember sizes and counters between runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.session import diagnostic
from cuisine_db.diagnose.sizes import data_filesystem, read_database_size
from cuisine_db.findings import Finding
from cuisine_db.monitor import growth
from cuisine_db.monitor.figures import Counters, Figures, Rates, gather, rates_between, read_counters
from cuisine_db.monitor.health_checks import CheckStatus, evaluate
from cuisine_db.monitor.store import SizeSnapshot, Store, TableSnapshot, store_path

# Counters from a previous run give the rates when that run is this recent (a scheduler runs it every minute).
PREVIOUS_RUN_MAX_AGE = 900.0
DEFAULT_WINDOW = 1.0


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """One monitoring run: the status of each group of checks, the findings, and the figures behind them."""

    env: str
    status: str  # ok, warning or critical
    checks: list[CheckStatus]
    findings: list[Finding]
    forecast: growth.Forecast
    snapshot_recorded: bool
    figures: Figures


def _previous_rates(store: Store, first: Counters) -> Rates | None:
    previous = store.last_counters(first.database)
    if previous is None or not 1.0 <= first.taken_at - previous.taken_at <= PREVIOUS_RUN_MAX_AGE:
        return None
    return rates_between(previous, first, "since the previous run")


def record_snapshot(settings: Settings, env: Environment, store: Store,
                    conn: psycopg.Connection[Any] | None = None) -> bool:
    """Store the database's and every table's size, unless the last snapshot is newer than the interval."""
    if not store.snapshot_due(env.monitoring.snapshot_interval_seconds):
        return False
    if conn is None:
        with diagnostic(settings, env, "db-growth") as own:
            return record_snapshot(settings, env, store, own)
    _, database_bytes = read_database_size(conn)
    tables = sql.rows(conn, TableSnapshot, sql.load("monitor/table_totals"))
    fs = data_filesystem(settings, env)
    store.add_snapshot(SizeSnapshot(taken_at=time.time(), database_bytes=database_bytes,
                                    fs_total_bytes=fs.total_bytes if fs else None,
                                    fs_free_bytes=fs.free_bytes if fs else None, tables=tables))
    return True


def run_monitor(settings: Settings, env: Environment, window: float | None = None) -> MonitorReport:
    """Every check once. `window`: None uses the previous run's counters when recent (else samples 1 s),
    a number samples transaction volume over that many seconds, 0 skips it."""
    store = Store(store_path(settings, env))
    with diagnostic(settings, env, "db-monitor") as conn:
        counters = read_counters(conn)
        started = time.monotonic()
        rates = _previous_rates(store, counters) if window is None else None
        sample = (DEFAULT_WINDOW if window is None else window) if rates is None else 0.0
        # The sampling window runs while the checks read everything else: it costs no extra time unless
        # the reads are quicker than the window.
        figures = gather(settings, conn, env, counters, rates)
        recorded = record_snapshot(settings, env, store, conn)
        if sample > 0:
            time.sleep(max(0.0, sample - (time.monotonic() - started)))
            later = read_counters(conn)
            figures = replace(figures, counters=later, rates=rates_between(counters, later, "sampled"))
            counters = later
    store.add_counters(counters)
    snapshots = store.snapshots(time.time() - 30 * growth.DAY)
    free = growth.free_bytes(snapshots[-1], env) if snapshots else None
    forecast = growth.forecast([(s.taken_at, s.database_bytes) for s in snapshots], free)
    checks, findings = evaluate(figures, forecast, env.monitoring)
    if env.patroni is not None:
        from cuisine_db.monitor import patroni as patroni_view

        group, found = patroni_view.check(settings, env)
        checks, findings = [*checks, group], [*findings, *found]
    status = "critical" if any(c.status == "critical" for c in checks) else \
        "warning" if any(c.status == "warning" for c in checks) else "ok"
    return MonitorReport(env=env.name, status=status, checks=checks, findings=findings, forecast=forecast,
                         snapshot_recorded=recorded, figures=figures)


def growth_report(settings: Settings, env: Environment, days: int = 30, limit: int = 20) -> growth.GrowthReport:
    """Growth over the last `days` from the stored snapshots (recording one now if one is due)."""
    store = Store(store_path(settings, env))
    record_snapshot(settings, env, store)
    since = time.time() - days * growth.DAY
    snapshots = store.snapshots(since)
    points = [(s.taken_at, s.database_bytes) for s in snapshots]
    free = growth.free_bytes(snapshots[-1], env) if snapshots else None
    return growth.GrowthReport(env=env.name, days=days, snapshots=len(snapshots),
                               daily=growth.daily_sizes(snapshots),
                               tables=growth.table_growth(store.table_series(since), limit),
                               forecast=growth.forecast(points, free))

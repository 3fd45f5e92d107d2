"""The monitoring figures as Prometheus metrics (`cuisine-db metrics serve`), read afresh at every scrape.

db-monitor's figures (`figures.py`) and the server's statistics (`server_stats.py`, turned into families by
`metric_families.py`) are read on one kept connection, to the primary or to one replica (`member`).
"""

from __future__ import annotations

import errno
import ipaddress
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.session import set_timeouts
from cuisine_db.errors import CuisineDbError, UsageError
from cuisine_db.monitor import growth
from cuisine_db.monitor.figures import Figures, gather, read_counters
from cuisine_db.monitor.health_checks import evaluate
from cuisine_db.monitor.metric_families import PREFIX, families
from cuisine_db.monitor.metric_families import counter as _counter
from cuisine_db.monitor.metric_families import gauge as _gauge
from cuisine_db.monitor.server_stats import TABLE_SERIES_LIMIT, read_largest_tables, read_server_stats
from cuisine_db.monitor.store import Store, store_path
from cuisine_db.postgres.target import Target
from cuisine_db.replicas.members import find as find_replica

__all__ = ["PREFIX", "ServerCollector", "check_address", "serve"]

_STATUS = {"ok": 0, "warning": 1, "critical": 2}


class ServerCollector(Collector):
    """Collects at scrape time on one kept connection, reopened after any failure; `up` says whether it worked."""

    def __init__(self, settings: Settings, env: Environment, table_limit: int = 20, target: Target | None = None,
                 table_series_limit: int = TABLE_SERIES_LIMIT) -> None:
        self.settings = settings
        self.env = env
        self.table_limit = table_limit  # the largest tables' sizes and bloat (each estimate reads pg_stats)
        self.table_series_limit = table_series_limit  # per-table statistics: one cheap pass, bounded
        self.target = target
        self.member = target.name if target is not None else "primary"
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.settings, self.env, "metrics", start=False, purpose="monitoring",
                                 target=self.target)
            set_timeouts(self._conn)
        return self._conn

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        with self._lock:
            try:
                conn = self._connection()
                figures = gather(self.settings, conn, self.env, read_counters(conn), None)
                tables = read_largest_tables(conn, self.table_limit)
                stats = read_server_stats(conn, self.table_series_limit)
            except (psycopg.Error, CuisineDbError):
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                yield _gauge("up", "1 when the last scrape could read the server, else 0", 0)
                return
        yield _gauge("up", "1 when the last scrape could read the server, else 0", 1)
        yield from self._figures(figures)
        table_size = _gauge("table_size_bytes", "Total size of the largest tables (heap, indexes, TOAST)",
                            labels=["schema", "table"])
        bloat = _gauge("table_bloat_bytes", "Estimated heap bloat of the largest tables", labels=["schema", "table"])
        for table in tables:
            labels = [table.schema, table.table_name]
            table_size.add_metric(labels, table.total_bytes)
            if table.bloat_bytes is not None:
                bloat.add_metric(labels, table.bloat_bytes)
        yield from (table_size, bloat)
        yield from families(stats)
        yield _gauge("scrape_duration_seconds", "Time this scrape took", time.monotonic() - started)

    def _figures(self, f: Figures) -> Iterator[Metric]:
        u = f.connections
        info = _gauge("info", "The environment, member (primary or a replica's name) and server this endpoint reads",
                      labels=["env", "member", "database", "server_version"])
        info.add_metric([self.env.name, self.member, f.counters.database, str(f.server_version)], 1)
        yield info
        yield _gauge("max_connections", "max_connections", u.max_connections)
        yield _gauge("connections_available", "Slots for ordinary roles (max_connections minus reserved)",
                     u.available)
        yield _gauge("connections_in_use", "Client sessions, this one excluded", u.in_use)
        by_state = _gauge("connections", "Client sessions by state", labels=["state"])
        for state, count in u.by_state.items():
            by_state.add_metric([state], count)
        yield by_state
        yield _gauge("idle_in_transaction_sessions", "Sessions idle inside an open transaction",
                     len(u.idle_in_transaction))
        yield _gauge("idle_in_transaction_longest_seconds", "Longest time a session has been idle in transaction",
                     max((s.state_seconds or 0.0 for s in u.idle_in_transaction), default=0.0))
        yield _gauge("oldest_transaction_seconds", "Age of the oldest open transaction",
                     (u.oldest_transaction.xact_seconds or 0.0) if u.oldest_transaction else 0.0)
        active = [s.query_seconds or 0.0 for s in u.sessions if s.state == "active"]
        yield _gauge("longest_query_seconds", "Longest running active query", max(active, default=0.0))
        yield _gauge("lock_waiting_sessions", "Sessions waiting for a lock",
                     sum(1 for s in u.sessions if s.wait_event_type == "Lock"))
        c = f.counters
        yield _counter("transactions_committed", "Transactions committed in this database", c.xact_commit)
        yield _counter("transactions_rolled_back", "Transactions rolled back in this database", c.xact_rollback)
        yield _counter("deadlocks", "Deadlocks detected in this database", c.deadlocks)
        yield _counter("blocks_hit", "Block reads found in shared buffers", c.blks_hit)
        yield _counter("blocks_read", "Blocks read from disk or the OS cache", c.blks_read)
        yield _counter("temp_bytes", "Bytes written to temporary files", c.temp_bytes)
        if f.cache_hit_ratio is not None:
            yield _gauge("cache_hit_ratio", "Share of block reads found in shared buffers since the statistics were "
                         "reset (a recent ratio: rate() of database_blocks_hit and database_blocks_read)",
                         f.cache_hit_ratio)
        yield _gauge("database_size_bytes", "Size of the database", f.database_bytes)
        if f.filesystem is not None:
            yield _gauge("filesystem_size_bytes", "Size of the data directory's filesystem", f.filesystem.total_bytes)
            yield _gauge("filesystem_free_bytes", "Free space of the data directory's filesystem",
                         f.filesystem.free_bytes)
        xid = _gauge("xid_age", "Transaction ID age of each database (wraparound at 2^31)", labels=["database"])
        mxid = _gauge("mxid_age", "MultiXact ID age of each database (wraparound at 2^31)", labels=["database"])
        for age in f.wraparound:
            xid.add_metric([age.database], age.xid_age)
            mxid.add_metric([age.database], age.mxid_age)
        yield from (xid, mxid)
        yield _gauge("prepared_transactions", "Prepared (two-phase) transactions", len(f.prepared))
        yield _gauge("prepared_transaction_oldest_seconds", "Age of the oldest prepared transaction",
                     max((p.prepared_seconds for p in f.prepared), default=0.0))
        lag = _gauge("replication_lag_seconds", "Replay lag of each standby", labels=["standby", "client"])
        lag_bytes = _gauge("replication_lag_bytes", "WAL bytes each standby has yet to replay",
                           labels=["standby", "client"])
        for replica in f.replicas:
            # PostgreSQL leaves replay_lag NULL once a standby has replayed everything and nothing new came: caught
            # up, so 0 rather than a series that comes and goes (an alert on it would see gaps).
            seconds = 0.0 if replica.lag_seconds is None and replica.lag_bytes == 0 else replica.lag_seconds
            if seconds is not None:
                lag.add_metric([replica.name, replica.client], seconds)
            if replica.lag_bytes is not None:
                lag_bytes.add_metric([replica.name, replica.client], replica.lag_bytes)
        yield from (lag, lag_bytes)
        slots = _gauge("replication_slot_retained_bytes", "WAL kept on disk for each replication slot",
                       labels=["slot", "active"])
        for slot in f.slots:
            slots.add_metric([slot.name, str(slot.active).lower()], slot.retained_bytes)
        yield slots
        yield _counter("archiver_archived", "WAL segments archived", f.archiver.archived_count)
        yield _counter("archiver_failed", "Failed WAL archive attempts", f.archiver.failed_count)
        yield _gauge("archiver_failing", "1 when the last archive attempt failed", int(f.archiver.failing))
        if f.archiver.last_archived_seconds is not None:
            yield _gauge("archiver_last_archived_age_seconds", "Seconds since a WAL segment was last archived",
                         f.archiver.last_archived_seconds)
        if f.archiver.last_failed_seconds is not None:
            yield _gauge("archiver_last_failed_age_seconds", "Seconds since an archive attempt last failed",
                         f.archiver.last_failed_seconds)
        store = Store(store_path(self.settings, self.env))
        snapshots = store.snapshots(time.time() - 30 * growth.DAY)
        free = growth.free_bytes(snapshots[-1], self.env) if snapshots else None
        forecast = growth.forecast([(s.taken_at, s.database_bytes) for s in snapshots], free)
        if forecast.days_until_full is not None:
            # In seconds, Prometheus' base unit (promtool refuses "days"); the alert rules and dashboard divide.
            yield _gauge("disk_full_in_seconds", "Seconds until the disk is full at the recent growth rate",
                         forecast.days_until_full * growth.DAY)
        checks, _ = evaluate(f, forecast, self.env.monitoring)
        status = _gauge("check_status", "db-monitor's verdict per check: 0 ok, 1 warning, 2 critical",
                        labels=["check"])
        for check in checks:
            status.add_metric([check.name], _STATUS[check.status])
        yield status


def check_address(address: str) -> bool:
    """Validate the listening address; True when it is loopback."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        raise UsageError(f"{address!r} is not an IP address", hint="e.g. 127.0.0.1 (the default) or ::1") from None


def serve(settings: Settings, env: Environment, address: str, port: int,
          replica: str | None = None) -> tuple[Any, threading.Thread]:
    """Start the HTTP endpoint in a background thread (for the primary, or the replica named `replica`); returns
    the server (to shut down) and its thread."""
    target = find_replica(settings, env, replica).target if replica is not None else None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(settings, env, target=target))
    if env.patroni is not None:
        from cuisine_db.monitor.patroni import PatroniCollector

        registry.register(PatroniCollector(settings, env))
    try:
        return start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {address} is already in use", hint="choose another with --port") from None
        raise UsageError(f"cannot listen on {address}:{port}: {exc.strerror}") from None

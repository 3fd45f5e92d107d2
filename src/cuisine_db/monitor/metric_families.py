"""Prometheus families for the server statistics of `server_stats.py`: checkpointer, WAL, locks, databases,
tables, sessions, standby replay (pure: no query here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeAlias

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from cuisine_db.monitor.server_stats import DatabaseActivity, ServerStats, TableActivity

PREFIX = "cuisine_db"
Family: TypeAlias = GaugeMetricFamily | CounterMetricFamily


def gauge(name: str, doc: str, value: float | None = None, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value, labels=labels)


def counter(name: str, doc: str, value: float | None = None, labels: list[str] | None = None) -> CounterMetricFamily:
    # prometheus_client adds the _total suffix of a counter's samples.
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value, labels=labels)


def checkpointer(stats: ServerStats) -> Iterator[Metric]:
    c = stats.checkpointer
    yield counter("checkpoints_timed", "Checkpoints started because checkpoint_timeout passed", c.timed)
    yield counter("checkpoints_requested", "Checkpoints requested: max_wal_size filled, CHECKPOINT, shutdown...",
                  c.requested)
    yield counter("checkpoint_write_seconds", "Time checkpoints spent writing files", c.write_ms / 1000)
    yield counter("checkpoint_sync_seconds", "Time checkpoints spent syncing files to disk", c.sync_ms / 1000)
    written = counter("buffers_written", "Shared buffers written, by who wrote them (backend: the sessions "
                      "themselves, a sign the background writer falls behind)", labels=["writer"])
    written.add_metric(["checkpointer"], c.checkpointer_buffers)
    written.add_metric(["bgwriter"], c.bgwriter_buffers)
    written.add_metric(["backend"], c.backend_buffers)
    yield written
    yield counter("bgwriter_maxwritten_stops", "Background writer rounds stopped at bgwriter_lru_maxpages",
                  c.bgwriter_stopped)
    yield counter("buffers_allocated", "Shared buffers allocated", c.allocated_buffers)


def wal(stats: ServerStats) -> Iterator[Metric]:
    w = stats.wal
    yield counter("wal_records", "WAL records generated", w.records)
    yield counter("wal_full_page_images", "WAL full-page images generated", w.full_page_images)
    yield counter("wal_bytes", "WAL generated, in bytes (rate() is the WAL rate)", w.bytes)
    yield counter("wal_buffers_full", "Times WAL was written because the WAL buffers were full", w.buffers_full)
    yield gauge("wal_directory_bytes", "Size of pg_wal", w.directory_bytes)
    yield gauge("wal_directory_files", "Files in pg_wal", w.directory_files)


def locks(stats: ServerStats) -> Iterator[Metric]:
    family = gauge("locks", "Locks by database, mode and whether granted (granted=\"false\": waited for)",
                   labels=["database", "mode", "granted"])
    for lock in stats.locks:
        family.add_metric([lock.database, lock.mode, str(lock.granted).lower()], lock.locks)
    yield family


def _per_database(rows: list[DatabaseActivity], kind: Callable[..., Family], name: str, doc: str,
                  value: Callable[[DatabaseActivity], float]) -> Family:
    family = kind(name, doc, labels=["database"])
    for row in rows:
        family.add_metric([row.database], value(row))
    return family


def databases(stats: ServerStats) -> Iterator[Metric]:
    rows = stats.databases
    yield _per_database(rows, gauge, "database_backends", "Sessions connected to each database",
                        lambda r: r.backends)
    simple: list[tuple[str, str, Callable[[DatabaseActivity], float]]] = [
        ("database_commits", "Transactions committed", lambda r: r.commits),
        ("database_rollbacks", "Transactions rolled back", lambda r: r.rollbacks),
        ("database_blocks_hit", "Block reads found in shared buffers (hit ratio: rate() of this over "
                                "rate() of hit + read)", lambda r: r.blocks_hit),
        ("database_blocks_read", "Blocks read from disk or the OS cache", lambda r: r.blocks_read),
        ("database_rows_returned", "Rows returned by scans", lambda r: r.rows_returned),
        ("database_rows_fetched", "Rows fetched by index scans", lambda r: r.rows_fetched),
        ("database_rows_inserted", "Rows inserted", lambda r: r.rows_inserted),
        ("database_rows_updated", "Rows updated", lambda r: r.rows_updated),
        ("database_rows_deleted", "Rows deleted", lambda r: r.rows_deleted),
        ("database_temp_files", "Temporary files created by queries", lambda r: r.temp_files),
        ("database_temp_bytes", "Bytes written to temporary files", lambda r: r.temp_bytes),
        ("database_deadlocks", "Deadlocks detected", lambda r: r.deadlocks),
        ("database_read_time_seconds", "Time spent reading blocks (0 unless track_io_timing is on)",
         lambda r: r.read_ms / 1000),
        ("database_write_time_seconds", "Time spent writing blocks (0 unless track_io_timing is on)",
         lambda r: r.write_ms / 1000),
        ("database_session_time_seconds", "Time sessions spent connected", lambda r: r.session_ms / 1000),
        ("database_active_time_seconds", "Time sessions spent running statements", lambda r: r.active_ms / 1000),
        ("database_idle_in_transaction_time_seconds", "Time sessions spent idle inside a transaction",
         lambda r: r.idle_in_transaction_ms / 1000),
        ("database_sessions", "Sessions established", lambda r: r.sessions),
    ]
    for name, doc, value in simple:
        yield _per_database(rows, counter, name, doc, value)
    ended = counter("database_sessions_ended", "Sessions that ended other than by the client's disconnect",
                    labels=["database", "reason"])
    conflicts = counter("database_conflicts", "Queries cancelled on this standby by recovery conflicts",
                        labels=["database", "reason"])
    for row in rows:
        for reason, count in (("abandoned", row.sessions_abandoned), ("fatal", row.sessions_fatal),
                              ("killed", row.sessions_killed)):
            ended.add_metric([row.database, reason], count)
        for reason, count in (("tablespace", row.conflicts_tablespace), ("lock", row.conflicts_lock),
                              ("snapshot", row.conflicts_snapshot), ("bufferpin", row.conflicts_bufferpin),
                              ("deadlock", row.conflicts_deadlock)):
            conflicts.add_metric([row.database, reason], count)
    yield from (ended, conflicts)


def _per_table(rows: list[TableActivity], kind: Callable[..., Family], name: str, doc: str,
               value: Callable[[TableActivity], float | None]) -> Family:
    family = kind(name, doc, labels=["schema", "table"])
    for row in rows:
        found = value(row)
        if found is not None:
            family.add_metric([row.schema, row.table_name], found)
    return family


def tables(stats: ServerStats) -> Iterator[Metric]:
    rows = stats.tables
    yield gauge("tables", "User tables in this database", stats.tables_total)
    yield gauge("tables_unlisted", "User tables left out of the per-table series (beyond the limit, smallest "
                "first)", stats.tables_total - len(rows))
    # Seven series a table (5,000 tables: 35,000 samples); vacuum and analyze counts stay out, their ages say more.
    per_table: list[tuple[Callable[..., Family], str, str, Callable[[TableActivity], float | None]]] = [
        (counter, "table_seq_scans", "Sequential scans of each table", lambda r: r.seq_scans),
        (counter, "table_index_scans", "Index scans of each table", lambda r: r.index_scans),
        (gauge, "table_live_rows", "Estimated live rows of each table", lambda r: r.live_rows),
        (gauge, "table_dead_rows", "Estimated dead rows of each table", lambda r: r.dead_rows),
        (gauge, "table_rows_changed_since_analyze", "Rows changed since each table was last analyzed",
         lambda r: r.changed_since_analyze),
        (gauge, "table_last_vacuum_age_seconds", "Seconds since each table was last vacuumed, manually or by "
         "autovacuum (absent: never)", lambda r: r.vacuum_age_seconds),
        (gauge, "table_last_analyze_age_seconds", "Seconds since each table was last analyzed, manually or by "
         "autovacuum (absent: never)", lambda r: r.analyze_age_seconds),
    ]
    for kind, name, doc, value in per_table:
        yield _per_table(rows, kind, name, doc, value)


def sessions(stats: ServerStats) -> Iterator[Metric]:
    by_state = gauge("sessions", "Client sessions by database, user and state", labels=["database", "user", "state"])
    waiting = gauge("sessions_waiting_for_lock", "Client sessions waiting for a lock, by database and user",
                    labels=["database", "user"])
    totals: dict[tuple[str, str], int] = {}
    for row in stats.sessions:
        by_state.add_metric([row.database, row.username, row.state], row.sessions)
        key = (row.database, row.username)
        totals[key] = totals.get(key, 0) + row.waiting_for_lock
    for (database, user), count in sorted(totals.items()):
        waiting.add_metric([database, user], count)
    yield from (by_state, waiting)


def standby(stats: ServerStats) -> Iterator[Metric]:
    s = stats.standby
    yield gauge("in_recovery", "1 on a standby (in recovery), 0 on a primary", int(s.in_recovery))
    yield gauge("standby_replay_lag_seconds", "On a standby: seconds its replay is behind the newest transaction "
                "it received (0 when caught up or on a primary)", s.replay_lag_seconds)
    yield gauge("standby_replay_lag_bytes", "On a standby: WAL received but not yet replayed, in bytes",
                s.replay_lag_bytes)


def families(stats: ServerStats) -> Iterator[Metric]:
    """Every family built from one reading of the statistics."""
    for part in (checkpointer, wal, locks, databases, tables, sessions, standby):
        yield from part(stats)

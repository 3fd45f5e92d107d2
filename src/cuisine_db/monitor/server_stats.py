"""The server's cumulative statistics behind the metrics beyond db-monitor's figures, read in one pass per scrape.

Counters stay counters: ratios and rates (cache hits, WAL per second) are left to PromQL's `rate()`, which
picks its own window, survives restarts and counter resets, and is the same whichever Prometheus scrapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.diagnose.sizes import TableSize, read_table_sizes

# Per-table series are bounded: the largest tables first, at most this many (the rest are counted, not listed).
TABLE_SERIES_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class Checkpointer:
    timed: int
    requested: int
    write_ms: float
    sync_ms: float
    checkpointer_buffers: int
    bgwriter_buffers: int
    bgwriter_stopped: int
    backend_buffers: int
    allocated_buffers: int


@dataclass(frozen=True, slots=True)
class WalActivity:
    records: int
    full_page_images: int
    bytes: int
    buffers_full: int
    directory_files: int
    directory_bytes: int


@dataclass(frozen=True, slots=True)
class LockCount:
    database: str
    mode: str
    granted: bool
    locks: int


@dataclass(frozen=True, slots=True)
class DatabaseActivity:
    database: str
    backends: int
    commits: int
    rollbacks: int
    blocks_read: int
    blocks_hit: int
    rows_returned: int
    rows_fetched: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    conflicts: int
    temp_files: int
    temp_bytes: int
    deadlocks: int
    read_ms: float
    write_ms: float
    session_ms: float
    active_ms: float
    idle_in_transaction_ms: float
    sessions: int
    sessions_abandoned: int
    sessions_fatal: int
    sessions_killed: int
    conflicts_tablespace: int
    conflicts_lock: int
    conflicts_snapshot: int
    conflicts_bufferpin: int
    conflicts_deadlock: int


@dataclass(frozen=True, slots=True)
class TableActivity:
    schema: str
    table_name: str
    seq_scans: int
    index_scans: int
    live_rows: int
    dead_rows: int
    changed_since_analyze: int
    vacuum_age_seconds: float | None
    analyze_age_seconds: float | None
    tables: int  # every user table of the database, listed or not


@dataclass(frozen=True, slots=True)
class SessionCount:
    database: str
    username: str
    state: str
    sessions: int
    waiting_for_lock: int


@dataclass(frozen=True, slots=True)
class StandbyReplay:
    in_recovery: bool
    replay_lag_seconds: float
    replay_lag_bytes: int


@dataclass(frozen=True, slots=True)
class ServerStats:
    """One scrape's reading of the server-wide and per-database statistics."""

    checkpointer: Checkpointer
    wal: WalActivity
    locks: list[LockCount]
    databases: list[DatabaseActivity]
    tables: list[TableActivity]
    sessions: list[SessionCount]
    standby: StandbyReplay

    @property
    def tables_total(self) -> int:
        return self.tables[0].tables if self.tables else 0


def read_largest_tables(conn: psycopg.Connection[Any], limit: int) -> list[TableSize]:
    """The `limit` largest tables with sizes and estimated bloat, measuring only the likeliest candidates' files
    (db-table-sizes measures every table's: on 5,000 tables that alone took seconds)."""
    return read_table_sizes(conn, limit, candidates=4 * limit + 50)


def read_server_stats(conn: psycopg.Connection[Any], table_limit: int = TABLE_SERIES_LIMIT) -> ServerStats:
    """Read every statistic of the metrics beyond db-monitor's figures on an open connection."""
    version = conn.info.server_version
    return ServerStats(
        checkpointer=sql.one(conn, Checkpointer, sql.for_server("monitor/checkpointer", version)),
        wal=sql.one(conn, WalActivity, sql.load("monitor/wal_activity")),
        locks=sql.rows(conn, LockCount, sql.load("monitor/locks_by_mode")),
        databases=sql.rows(conn, DatabaseActivity, sql.load("monitor/database_activity")),
        tables=sql.rows(conn, TableActivity, sql.load("monitor/table_activity"), {"row_limit": table_limit}),
        sessions=sql.rows(conn, SessionCount, sql.load("monitor/sessions")),
        standby=sql.one(conn, StandbyReplay, sql.load("monitor/standby_replay")),
    )

"""The figures behind db-monitor and the metrics endpoint, read from the server in one pass."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql as psql

from cuisine_db import sql
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.connections import ConnectionUsage, usage_from
from cuisine_db.diagnose.locks import PreparedTransaction
from cuisine_db.diagnose.query_text import shown
from cuisine_db.diagnose.sizes import Filesystem, data_filesystem, read_database_size

WRAPAROUND_LIMIT = 2**31


@dataclass(frozen=True, slots=True)
class Counters:
    """pg_stat_database's cumulative counters for this database at one moment."""

    database: str
    xact_commit: int
    xact_rollback: int
    deadlocks: int
    blks_hit: int
    blks_read: int
    temp_bytes: int
    stats_reset: datetime | None  # None until the database's statistics are first counted or reset
    server_started: datetime
    taken_at: float


@dataclass(frozen=True, slots=True)
class Rates:
    """Transaction volume between two readings of the counters."""

    seconds: float
    commits_per_second: float
    rollbacks_per_second: float
    transactions: int
    rollback_ratio: float | None
    deadlocks: int
    source: str  # "since the previous run" or "sampled"


@dataclass(frozen=True, slots=True)
class WraparoundAge:
    database: str
    xid_age: int
    mxid_age: int


@dataclass(frozen=True, slots=True)
class HorizonHolder:
    kind: str
    name: str
    xid_age: int | None
    seconds: float | None


@dataclass(frozen=True, slots=True)
class Replica:
    name: str
    client: str
    state: str
    lag_bytes: int | None
    lag_seconds: float | None


@dataclass(frozen=True, slots=True)
class StandbyLag:
    in_recovery: bool
    replay_lag_seconds: float | None


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    kind: str
    active: bool
    retained_bytes: int
    wal_status: str


@dataclass(frozen=True, slots=True)
class Archiver:
    archive_mode: str
    archived_count: int
    failed_count: int
    last_failed_wal: str | None
    last_failed_seconds: float | None
    last_archived_seconds: float | None
    failing: bool


@dataclass(frozen=True, slots=True)
class LongQuery:
    pid: int
    username: str
    database: str
    application: str
    seconds: float
    wait_event_type: str | None
    query: str


@dataclass(frozen=True, slots=True)
class SlowStatement:
    queryid: str
    calls: int
    mean_ms: float
    max_ms: float
    total_ms: float
    query: str


@dataclass(frozen=True, slots=True)
class DeadTable:
    schema: str
    table_name: str
    live_rows: int
    dead_rows: int
    dead_share: float
    vacuumed_seconds: float | None


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything the checks judge, read on one connection."""

    env: str
    server_version: int
    connections: ConnectionUsage
    counters: Counters
    rates: Rates | None
    database_bytes: int
    filesystem: Filesystem | None
    wraparound: list[WraparoundAge]
    horizon: list[HorizonHolder]
    prepared: list[PreparedTransaction]
    standby: StandbyLag
    replicas: list[Replica]
    slots: list[Slot]
    archiver: Archiver
    long_queries: list[LongQuery]
    slow_statements: list[SlowStatement] | None
    statements_note: str | None
    dead_tables: list[DeadTable]

    @property
    def cache_hit_ratio(self) -> float | None:
        total = self.counters.blks_hit + self.counters.blks_read
        return self.counters.blks_hit / total if total else None


def read_counters(conn: psycopg.Connection[Any]) -> Counters:
    return sql.one(conn, Counters, sql.load("monitor/database_counters"))


def rates_between(earlier: Counters, later: Counters, source: str) -> Rates | None:
    """Transaction volume between two readings; None when they cannot be compared (reset, restart, no time)."""
    seconds = later.taken_at - earlier.taken_at
    # A new database's statistics get their reset time when first counted, so a None before is no reset.
    reset = earlier.stats_reset is not None and earlier.stats_reset != later.stats_reset
    comparable = (earlier.database == later.database and not reset
                  and earlier.server_started == later.server_started and seconds > 0
                  and later.xact_commit >= earlier.xact_commit and later.xact_rollback >= earlier.xact_rollback
                  and later.deadlocks >= earlier.deadlocks)
    if not comparable:
        return None
    commits = later.xact_commit - earlier.xact_commit
    rollbacks = later.xact_rollback - earlier.xact_rollback
    total = commits + rollbacks
    return Rates(seconds=round(seconds, 3), commits_per_second=commits / seconds,
                 rollbacks_per_second=rollbacks / seconds, transactions=total,
                 rollback_ratio=rollbacks / total if total else None,
                 deadlocks=later.deadlocks - earlier.deadlocks, source=source)


def _statements(conn: psycopg.Connection[Any], min_ms: float,
                min_calls: int) -> tuple[list[SlowStatement] | None, str | None]:
    row = conn.execute(sql.load("monitor/pg_stat_statements_schema")).fetchone()
    if row is None:
        return None, "pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements"
    query = sql.load("monitor/slow_statements").format(schema=psql.Identifier(row[0]))
    try:
        found = sql.rows(conn, SlowStatement, query, {"min_ms": min_ms, "min_calls": min_calls})
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return None, "pg_stat_statements is installed but not loaded: add it to shared_preload_libraries (restart)"
    return [replace(s, query=shown(s.query)) for s in found], None


def gather(settings: Settings, conn: psycopg.Connection[Any], env: Environment, counters: Counters,
           rates: Rates | None) -> Figures:
    """Read every figure the checks need on an open connection."""
    thresholds = env.monitoring
    statements, note = _statements(conn, thresholds.slow_query_mean_ms, thresholds.slow_query_min_calls)
    _, database_bytes = read_database_size(conn)
    long_min = min(thresholds.long_query_warning_seconds, thresholds.long_query_critical_seconds)
    return Figures(
        env=env.name,
        server_version=conn.info.server_version,
        connections=usage_from(conn, env),
        counters=counters,
        rates=rates,
        database_bytes=database_bytes,
        filesystem=data_filesystem(settings, env),
        wraparound=sql.rows(conn, WraparoundAge, sql.load("monitor/wraparound")),
        horizon=sql.rows(conn, HorizonHolder, sql.load("monitor/horizon_holders")),
        prepared=sql.rows(conn, PreparedTransaction, sql.load("diagnose/prepared_transactions")),
        standby=sql.one(conn, StandbyLag, sql.load("monitor/standby_lag")),
        replicas=sql.rows(conn, Replica, sql.load("monitor/replication")),
        slots=sql.rows(conn, Slot, sql.load("monitor/replication_slots")),
        archiver=sql.one(conn, Archiver, sql.load("monitor/archiver")),
        long_queries=[replace(q, query=shown(q.query)) for q in
                      sql.rows(conn, LongQuery, sql.load("monitor/long_queries"), {"min_seconds": long_min})],
        slow_statements=statements,
        statements_note=note,
        dead_tables=sql.rows(conn, DeadTable, sql.load("monitor/dead_tuples"),
                             {"min_rows": thresholds.dead_rows_minimum, "min_share": thresholds.dead_share_warning}),
    )

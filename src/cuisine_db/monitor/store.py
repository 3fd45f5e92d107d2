"""The monitoring state of an environment: size snapshots for growth, the last counters for rates, and the WAL
archive's lag over the last week (written by the dashboard's Recovery page, for its chart).

One SQLite file in the environment's state folder (`.cuisine/<env>/monitor.sqlite`): written by every
db-monitor run, safe for two runs at once (SQLite's own locking), kept small by thinning old snapshots.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.monitor.figures import Counters

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    taken_at REAL NOT NULL, database TEXT NOT NULL, xact_commit INTEGER NOT NULL, xact_rollback INTEGER NOT NULL,
    deadlocks INTEGER NOT NULL, blks_hit INTEGER NOT NULL, blks_read INTEGER NOT NULL, temp_bytes INTEGER NOT NULL,
    stats_reset TEXT, server_started TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY, taken_at REAL NOT NULL, database_bytes INTEGER NOT NULL,
    fs_total_bytes INTEGER, fs_free_bytes INTEGER);
CREATE TABLE IF NOT EXISTS table_sizes (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE, schema TEXT NOT NULL,
    name TEXT NOT NULL, total_bytes INTEGER NOT NULL, row_estimate INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS archive_lag (
    taken_at REAL NOT NULL, last_archived_age REAL, segments_waiting INTEGER);
CREATE INDEX IF NOT EXISTS snapshots_taken ON snapshots (taken_at);
CREATE INDEX IF NOT EXISTS archive_lag_taken ON archive_lag (taken_at);
CREATE INDEX IF NOT EXISTS table_sizes_snapshot ON table_sizes (snapshot_id);
"""
_DAY = 86_400.0
# Every snapshot of the last week is kept, then the first of each day, for two years.
_KEEP_ALL_DAYS = 7
_KEEP_DAYS = 800
_KEEP_ARCHIVE_LAG_DAYS = 7


@dataclass(frozen=True, slots=True)
class TableSnapshot:
    schema: str
    name: str
    total_bytes: int
    row_estimate: int


@dataclass(frozen=True, slots=True)
class SizeSnapshot:
    """The database's and each table's size at one moment, with the filesystem's free space if known."""

    taken_at: float
    database_bytes: int
    fs_total_bytes: int | None
    fs_free_bytes: int | None
    tables: Sequence[TableSnapshot] = ()


def store_path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / "monitor.sqlite"


class Store:
    """Reads and writes one environment's monitoring state."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA foreign_keys = ON")
            db.executescript(_SCHEMA)
            with db:
                yield db

    def last_counters(self, database: str) -> Counters | None:
        with self._db() as db:
            row = db.execute("SELECT database, xact_commit, xact_rollback, deadlocks, blks_hit, blks_read, temp_bytes, "
                             "stats_reset, server_started, taken_at FROM counters WHERE database = ? "
                             "ORDER BY taken_at DESC LIMIT 1", (database,)).fetchone()
        if row is None:
            return None
        return Counters(row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                        datetime.fromisoformat(row[7]) if row[7] else None, datetime.fromisoformat(row[8]), row[9])

    def add_counters(self, counters: Counters) -> None:
        with self._db() as db:
            db.execute("INSERT INTO counters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (counters.taken_at, counters.database, counters.xact_commit, counters.xact_rollback,
                        counters.deadlocks, counters.blks_hit, counters.blks_read, counters.temp_bytes,
                        counters.stats_reset.isoformat() if counters.stats_reset else None,
                        counters.server_started.isoformat()))
            db.execute("DELETE FROM counters WHERE taken_at < ?", (counters.taken_at - 2 * _DAY,))

    def last_snapshot_at(self) -> float | None:
        with self._db() as db:
            row = db.execute("SELECT max(taken_at) FROM snapshots").fetchone()
        return row[0] if row else None

    def snapshot_due(self, interval_seconds: float, now: float | None = None) -> bool:
        last = self.last_snapshot_at()
        return last is None or (now or time.time()) - last >= interval_seconds

    def add_snapshot(self, snapshot: SizeSnapshot) -> None:
        with self._db() as db:
            cursor = db.execute("INSERT INTO snapshots (taken_at, database_bytes, fs_total_bytes, fs_free_bytes) "
                                "VALUES (?, ?, ?, ?)", (snapshot.taken_at, snapshot.database_bytes,
                                                        snapshot.fs_total_bytes, snapshot.fs_free_bytes))
            db.executemany("INSERT INTO table_sizes VALUES (?, ?, ?, ?, ?)",
                           [(cursor.lastrowid, t.schema, t.name, t.total_bytes, t.row_estimate)
                            for t in snapshot.tables])
            self._thin(db, snapshot.taken_at)

    @staticmethod
    def _thin(db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM snapshots WHERE taken_at < ?", (now - _KEEP_DAYS * _DAY,))
        db.execute("DELETE FROM snapshots WHERE taken_at < ? AND id NOT IN ("
                   " SELECT min(id) FROM snapshots GROUP BY CAST(taken_at / 86400 AS INTEGER))",
                   (now - _KEEP_ALL_DAYS * _DAY,))

    def snapshots(self, since: float) -> list[SizeSnapshot]:
        """Snapshots taken since the given time, oldest first, without their tables."""
        with self._db() as db:
            rows = db.execute("SELECT taken_at, database_bytes, fs_total_bytes, fs_free_bytes FROM snapshots "
                              "WHERE taken_at >= ? ORDER BY taken_at", (since,)).fetchall()
        return [SizeSnapshot(*row) for row in rows]

    def table_series(self, since: float) -> dict[tuple[str, str], list[tuple[float, int]]]:
        """Each table's total size per snapshot since the given time, oldest first."""
        series: dict[tuple[str, str], list[tuple[float, int]]] = {}
        with self._db() as db:
            rows = db.execute("SELECT t.schema, t.name, s.taken_at, t.total_bytes FROM table_sizes AS t "
                              "JOIN snapshots AS s ON s.id = t.snapshot_id WHERE s.taken_at >= ? "
                              "ORDER BY s.taken_at", (since,)).fetchall()
        for schema, name, taken_at, total in rows:
            series.setdefault((schema, name), []).append((taken_at, total))
        return series

    def add_archive_lag(self, taken_at: float, last_archived_age: float | None, segments_waiting: int | None,
                        *, every: float = 60.0) -> bool:
        """Record the archive's lag unless a row is less than `every` seconds old; rows older than a week go.
        Whether a row was added."""
        with self._db() as db:
            row = db.execute("SELECT max(taken_at) FROM archive_lag").fetchone()
            if row and row[0] is not None and taken_at - row[0] < every:
                return False
            db.execute("INSERT INTO archive_lag VALUES (?, ?, ?)", (taken_at, last_archived_age, segments_waiting))
            db.execute("DELETE FROM archive_lag WHERE taken_at < ?", (taken_at - _KEEP_ARCHIVE_LAG_DAYS * _DAY,))
        return True

    def archive_lag(self, since: float) -> list[tuple[float, float | None, int | None]]:
        """(time, seconds since the newest archived segment, finished segments waiting) since the given time."""
        with self._db() as db:
            rows = db.execute("SELECT taken_at, last_archived_age, segments_waiting FROM archive_lag "
                              "WHERE taken_at >= ? ORDER BY taken_at", (since,)).fetchall()
        return [(row[0], row[1], row[2]) for row in rows]

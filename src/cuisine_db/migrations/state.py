"""What the database has applied compared with the files on disk: applied, pending, drifted, missing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from cuisine_db import sql
from cuisine_db.migrations.files import MigrationFile


@dataclass(frozen=True, slots=True)
class AppliedRow:
    """One row of schema_migrations."""

    version: str
    name: str | None
    checksum: str | None
    applied_at: datetime | None
    applied_by: str | None
    duration_ms: int | None
    applied_seq: int | None


@dataclass(frozen=True, slots=True)
class MigrationState:
    """One migration's standing: `applied`, `pending`, `drifted` (file edited) or `missing` (file gone)."""

    version: str
    name: str
    state: str
    applied_at: datetime | None = None
    applied_by: str | None = None
    duration_ms: int | None = None
    out_of_order: bool = False


def read_applied(conn: psycopg.Connection[Any]) -> list[AppliedRow]:
    """Applied migrations in applied order; none when the table does not exist yet."""
    present = conn.execute(sql.load("migrations/table_exists")).fetchone()
    if not present or not present[0]:
        return []
    with conn.cursor(row_factory=class_row(AppliedRow)) as cur:
        return cur.execute(sql.load("migrations/applied")).fetchall()


def compare(files: list[MigrationFile], applied: list[AppliedRow]) -> list[MigrationState]:
    """Every migration known to either side, in version order."""
    by_version = {row.version: row for row in applied}
    newest_applied = max(by_version, default="")
    states: list[MigrationState] = []
    for migration in files:
        row = by_version.pop(migration.version, None)
        if row is None:
            states.append(MigrationState(migration.version, migration.name, "pending",
                                         out_of_order=migration.version < newest_applied))
            continue
        # Rows dbmate wrote carry no checksum; they cannot drift until one is recorded.
        drifted = row.checksum is not None and row.checksum != migration.checksum
        states.append(MigrationState(migration.version, migration.name, "drifted" if drifted else "applied",
                                     row.applied_at, row.applied_by, row.duration_ms))
    for row in by_version.values():
        states.append(MigrationState(row.version, row.name or "?", "missing",
                                     row.applied_at, row.applied_by, row.duration_ms))
    return sorted(states, key=lambda state: state.version)

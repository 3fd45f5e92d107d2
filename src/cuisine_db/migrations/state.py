"""What the database has applied compared with the files on disk: applied, pending, drifted, missing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

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


_RECORDED = {"name", "checksum", "applied_at", "applied_by", "duration_ms", "applied_seq"}


def read_applied(conn: psycopg.Connection[Any]) -> list[AppliedRow]:
    """Applied migrations in version order; none when the table does not exist yet.

    A table dbmate created has only `version` until cuisine-db first writes to it; it is read as it is (a
    read-only status must not alter it), with the other fields empty.
    """
    row = conn.execute(sql.load("migrations/columns")).fetchone()
    columns = set(row[0]) if row else set()
    if "version" not in columns:
        return []
    query = "migrations/applied" if columns >= _RECORDED else "migrations/applied_versions"
    return sql.rows(conn, AppliedRow, sql.load(query))


def _order(file_name: str) -> bytes:
    # dbmate orders migrations by file name, byte by byte: applying, listing and choosing what to roll back.
    return file_name.encode()


def compare(files: list[MigrationFile], applied: list[AppliedRow]) -> list[MigrationState]:
    """Every migration known to either side, in dbmate's order (file names; a missing file by its version)."""
    by_version = {row.version: row for row in applied}
    names = {migration.version: migration.path.name for migration in files}
    newest_applied = max((_order(names.get(version, version)) for version in by_version), default=b"")
    states: list[tuple[bytes, MigrationState]] = []
    for migration in files:
        key = _order(migration.path.name)
        row = by_version.pop(migration.version, None)
        if row is None:
            states.append((key, MigrationState(migration.version, migration.name, "pending",
                                               out_of_order=key < newest_applied)))
            continue
        # Rows dbmate wrote carry no checksum; they cannot drift until one is recorded.
        drifted = row.checksum is not None and row.checksum != migration.checksum
        states.append((key, MigrationState(migration.version, migration.name, "drifted" if drifted else "applied",
                                           row.applied_at, row.applied_by, row.duration_ms)))
    for row in by_version.values():
        states.append((_order(row.version), MigrationState(row.version, row.name or "?", "missing",
                                                           row.applied_at, row.applied_by, row.duration_ms)))
    return [state for _, state in sorted(states, key=lambda pair: pair[0])]

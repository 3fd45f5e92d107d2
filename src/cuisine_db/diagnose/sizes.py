"""How big the database and its tables are, and how much room is left (db-size, db-table-sizes)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.session import diagnostic
from cuisine_db.postgres.target import Target


@dataclass(frozen=True, slots=True)
class TableSize:
    """One table's footprint; bloat is an estimate from pg_stats and is None until the table is analyzed."""

    schema: str
    table_name: str
    heap_bytes: int
    index_bytes: int
    toast_bytes: int
    total_bytes: int
    row_estimate: int
    dead_share: float
    dead_rows: int = 0
    bloat_bytes: int | None = None
    bloat_share: float | None = None
    locked: bool = False  # under an ACCESS EXCLUSIVE lock: sizes from pg_class, not measured


@dataclass(frozen=True, slots=True)
class Filesystem:
    """The filesystem holding a local cluster's data directory."""

    path: str
    total_bytes: int
    free_bytes: int  # what the server's user can still write (statvfs f_bavail)

    @property
    def free_share(self) -> float:
        return self.free_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True, slots=True)
class DatabaseSize:
    database: str
    bytes: int
    filesystem: Filesystem | None = None  # None: a remote server, whose disks this machine cannot see


def read_table_sizes(conn: psycopg.Connection[Any], limit: int, candidates: int | None = None) -> list[TableSize]:
    """The `limit` largest tables; with `candidates`, measuring only the files of that many tables that pg_class's
    page counts put first (None: every table's)."""
    return sql.rows(conn, TableSize, sql.load("diagnose/table_sizes"), {"limit": limit, "candidates": candidates})


def table_sizes(settings: Settings, env: Environment, limit: int = 50, target: Target | None = None) -> list[TableSize]:
    """The largest tables first, with their indexes and TOAST counted separately (on a replica: `target`)."""
    with diagnostic(settings, env, "db-table-sizes", target=target) as conn:
        return read_table_sizes(conn, limit)


def data_filesystem(settings: Settings, env: Environment, datadir: Path | None = None) -> Filesystem | None:
    """Size and free space of the filesystem under a local cluster's data directory; None for a remote server."""
    if not env.is_local:
        return None
    datadir = datadir or settings.env_dir(env) / "data"
    # statvfs needs only to reach the path, not to read the server-owned directory.
    probe = datadir if datadir.exists() else _existing_parent(datadir)
    stats = os.statvfs(probe)
    return Filesystem(path=str(datadir), total_bytes=stats.f_blocks * stats.f_frsize,
                      free_bytes=stats.f_bavail * stats.f_frsize)


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def read_database_size(conn: psycopg.Connection[Any]) -> tuple[str, int]:
    row = conn.execute(sql.load("diagnose/database_size")).fetchone()
    assert row is not None  # noqa: S101 - the statement always returns one row
    return row[0], row[1]


def database_size(settings: Settings, env: Environment, target: Target | None = None) -> DatabaseSize:
    """The database's size, and the free space of the data directory's filesystem when the cluster is local
    (the replica's, when routing chose one)."""
    with diagnostic(settings, env, "db-size", target=target) as conn:
        name, size = read_database_size(conn)
    datadir = target.datadir if target is not None else None
    if target is not None and datadir is None:
        return DatabaseSize(database=name, bytes=size)
    return DatabaseSize(database=name, bytes=size, filesystem=data_filesystem(settings, env, datadir))

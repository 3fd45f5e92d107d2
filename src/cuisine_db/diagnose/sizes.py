"""How big the database and its tables are (db-size, db-table-sizes)."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.rows import class_row

from cuisine_db import sql
from cuisine_db.config import Environment, Settings
from cuisine_db.postgres import connect


@dataclass(frozen=True, slots=True)
class TableSize:
    """One table's footprint."""

    schema: str
    table_name: str
    heap_bytes: int
    index_bytes: int
    toast_bytes: int
    total_bytes: int
    row_estimate: int
    dead_share: float


@dataclass(frozen=True, slots=True)
class DatabaseSize:
    database: str
    bytes: int


def table_sizes(settings: Settings, env: Environment, limit: int = 50) -> list[TableSize]:
    """The largest tables first, with their indexes and TOAST counted separately."""
    with connect(settings, env, "table-sizes", purpose="monitoring") as conn, \
            conn.cursor(row_factory=class_row(TableSize)) as cur:
        return cur.execute(sql.load("diagnose/table_sizes"), {"limit": limit}).fetchall()


def database_size(settings: Settings, env: Environment) -> DatabaseSize:
    with connect(settings, env, "db-size", purpose="monitoring") as conn, \
            conn.cursor(row_factory=class_row(DatabaseSize)) as cur:
        row = cur.execute(sql.load("diagnose/database_size")).fetchone()
        assert row is not None  # noqa: S101 - the statement always returns one row
        return row

"""pg_stat_statements: where it is, which version, and its rows; the version differences live in the SQL variants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment
from cuisine_db.errors import UnavailableError


@dataclass(frozen=True, slots=True)
class Location:
    schema: str | None
    version: str | None
    available: bool
    preload: str


@dataclass(frozen=True, slots=True)
class Statement:
    """One pg_stat_statements entry (per role, statement and nesting level)."""

    queryid: int | None
    query: str
    role: str
    toplevel: bool | None
    calls: int
    total_ms: float
    mean_ms: float
    max_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    temp_blks_read: int
    temp_blks_written: int
    io_ms: float
    since: datetime | None
    share: float

    @property
    def cache_hit(self) -> float | None:
        """Share of shared-buffer reads served from cache; None when the statement read no blocks."""
        touched = self.shared_blks_hit + self.shared_blks_read
        return self.shared_blks_hit / touched if touched else None


@dataclass(frozen=True, slots=True)
class Coverage:
    """How far back the statistics reach."""

    reset_at: datetime | None
    evicted: int | None


@dataclass(frozen=True, slots=True)
class Pgss:
    """An installed pg_stat_statements: the views to read and the version that picks the SQL."""

    schema: str
    version: str

    @property
    def version_num(self) -> int:
        """'1.11' -> 11100, comparable like server_version_num."""
        found = re.match(r"^(\d+)\.(\d+)", self.version)
        return int(found.group(1)) * 10000 + int(found.group(2)) * 100 if found else 0

    def view(self, name: str = "pg_stat_statements") -> sql.Identifier:
        return sql.Identifier(self.schema, name)


def _is_preloaded(preload: str) -> bool:
    return "pg_stat_statements" in [part.strip().strip('"') for part in preload.split(",")]


def locate(conn: psycopg.Connection[Any], env: Environment) -> Pgss:
    """The installed extension, created here when the tool manages the cluster; otherwise a hint to install it."""
    found = queries.one(conn, Location, queries.load("performance/pgss_location"))
    if not _is_preloaded(found.preload):
        raise UnavailableError(
            f"pg_stat_statements is not loaded on {env.name!r}'s server (shared_preload_libraries = "
            f"{found.preload!r}), so no query statistics are collected",
            hint=f"make db-update-config env={env.name} param=shared_preload_libraries value=pg_stat_statements "
                 "restart=1 (keep any libraries already listed; on a managed service use its parameter group)")
    if found.schema is None or found.version is None:
        if not (env.is_local and found.available):
            raise UnavailableError(
                f"pg_stat_statements is loaded but not installed in database {conn.info.dbname!r} of {env.name!r}",
                hint="as a superuser, run in that database: CREATE EXTENSION pg_stat_statements;")
        # A cluster the tool manages: enabling the view is part of managing it.
        conn.execute(queries.load("cluster/enable_pg_stat_statements"))
        return locate(conn, env)
    return Pgss(found.schema, found.version)


def top(conn: psycopg.Connection[Any], pgss: Pgss, limit: int) -> list[Statement]:
    """This database's statements with the most execution time first."""
    statement = queries.for_server("performance/slow_queries", pgss.version_num, pgss=pgss.view())
    return queries.rows(conn, Statement, statement, {"limit": limit})


def coverage(conn: psycopg.Connection[Any], pgss: Pgss) -> Coverage:
    statement = queries.for_server("performance/pgss_info", pgss.version_num,
                                   info=pgss.view("pg_stat_statements_info"))
    return queries.one_or_none(conn, Coverage, statement) or Coverage(None, None)

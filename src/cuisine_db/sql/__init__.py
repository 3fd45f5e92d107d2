"""Named SQL statements, one per file under this package, loaded by name (`load("migrations/applied")`).

Where a statement differs by server version, `VARIANTS` names the file for each version range and
`for_server()` picks it: `VARIANTS["diagnose/slow_queries"] = [(170000, "diagnose/slow_queries_pg17"),
(0, "diagnose/slow_queries")]` (newest first; the number is `server_version_num`). Where only a piece of it
differs (a function a later version added, a renamed column), the one file names the piece `{piece}` and `PARTS`
holds its text for each version range, newest first; `for_server()` fills it in. `rows()`, `one()` and
`one_or_none()` run a statement and read its rows into a dataclass whose fields are the statement's column aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import class_row

Row = TypeVar("Row")
# What a cursor runs: a loaded statement, or one with identifiers or version-dependent pieces filled in.
Statement = sql.SQL | sql.Composed

VARIANTS: dict[str, list[tuple[int, str]]] = {}

# Performance tuning (issue 5). pg_stat_statements' columns follow the extension's installed version, which
# can lag the server's after an upgrade: those entries are keyed by it (1.11 -> 11100), the rest by server version.
VARIANTS.update({
    "performance/slow_queries": [(11100, "performance/slow_queries"),
                                 (10900, "performance/slow_queries_pgss_1_9"),
                                 (0, "performance/slow_queries_pgss_1_7")],
    "performance/pgss_info": [(10900, "performance/pgss_info"), (0, "performance/pgss_info_pre_1_9")],
    "performance/checkpoints": [(170000, "performance/checkpoints_pg17"), (0, "performance/checkpoints")],
})
# Metrics (issue 20): PostgreSQL 17 moved the checkpoint counters from pg_stat_bgwriter to pg_stat_checkpointer.
VARIANTS["monitor/checkpointer"] = [(170000, "monitor/checkpointer_pg17"), (0, "monitor/checkpointer")]

# The pieces of a statement file that differ by version: fixed SQL text, never input.
PARTS: dict[str, dict[str, list[tuple[int, str]]]] = {
    # pg_stat_statements 1.8 renamed the time columns (keyed by the extension's version, as above).
    "performance/slow_queries_pgss_1_7": {
        "total_time": [(10800, "total_exec_time"), (0, "total_time")],
        "mean_time": [(10800, "mean_exec_time"), (0, "mean_time")],
        "max_time": [(10800, "max_exec_time"), (0, "max_time")],
    },
    "performance/index_inventory": {
        "last_scan": [(160000, "pg_stat_get_lastscan(i.indexrelid)"), (0, "NULL::timestamptz")],
    },
    # Integrity: PostgreSQL 15 records the database's collation version too.
    "integrity/collation_drift": {
        "database_recorded": [(150000, "d.datcollversion"), (0, "NULL::text")],
        "database_actual": [(150000, "pg_database_collation_actual_version(d.oid)"), (0, "NULL::text")],
    },
}


@cache
def text(name: str) -> str:
    """The statement stored in `<name>.sql`, without its leading comment lines."""
    raw = resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in raw.splitlines() if not line.startswith("--")).strip()


def load(name: str) -> sql.SQL:
    """The statement as a psycopg SQL object, ready for `.format()` with identifiers."""
    # Read from our own package, never from input.
    return sql.SQL(text(name))


def variant(name: str, server_version: int) -> str:
    """The file that serves `name` on a server of `server_version` (e.g. 140011); `name` itself if none differ."""
    for minimum, file_name in VARIANTS.get(name, []):
        if server_version >= minimum:
            return file_name
    return name


def _pick(versions: list[tuple[int, str]], server_version: int) -> str:
    return next(piece for minimum, piece in versions if server_version >= minimum)


def for_server(name: str, server_version: int, **identifiers: sql.Composable) -> Statement:
    """The statement for this server version (`conn.info.server_version`): its variant, its version-dependent
    pieces filled in, and `identifiers` (such as `pgss=sql.Identifier(...)`) put in their places."""
    file_name = variant(name, server_version)
    pieces = {piece: sql.SQL(_pick(versions, server_version)) for piece, versions in PARTS.get(file_name, {}).items()}
    statement = load(file_name)
    if not pieces and not identifiers:
        return statement
    return statement.format(**pieces, **identifiers)


def names() -> list[str]:
    """Every statement the package ships, as `area/name`."""
    root = resources.files(__package__)
    found = []
    for area in root.iterdir():
        if area.is_dir():
            found += [f"{area.name}/{f.name[:-4]}" for f in area.iterdir() if f.name.endswith(".sql")]
    return sorted(found)


def rows(conn: psycopg.Connection[Any], row: type[Row], statement: Statement,
         params: Mapping[str, Any] | None = None) -> list[Row]:
    """Every row of `statement`, each read into `row`. Without `params` psycopg leaves a '%' in it alone."""
    with conn.cursor(row_factory=class_row(row)) as cursor:
        return cursor.execute(statement, params).fetchall()


def one(conn: psycopg.Connection[Any], row: type[Row], statement: Statement,
        params: Mapping[str, Any] | None = None) -> Row:
    """The first row of a statement that always returns one (counters, a status), read into `row`."""
    found = rows(conn, row, statement, params)
    assert found, "the statement returned no row"  # noqa: S101 - each statement read this way returns one row
    return found[0]


def one_or_none(conn: psycopg.Connection[Any], row: type[Row], statement: Statement,
                params: Mapping[str, Any] | None = None) -> Row | None:
    """The first row of a statement that looks one thing up (a role, a table, a pid), or None when it is not there."""
    found = rows(conn, row, statement, params)
    return found[0] if found else None

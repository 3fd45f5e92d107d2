"""The integrity checks, one small planner each: given the catalog, each returns the tasks that do its work.

amcheck's `verify_heapam` reads every table (TOAST included), `bt_index_check(heapallindexed)` every B-tree
index; the rest look for what the server does not re-check once written: NOT VALID constraints, rows whose
foreign key parent is gone, sequences behind their column, invalid indexes, collation versions that changed
under existing indexes, and the checksum failures the server has counted; and row counts against the newest
backup (row_counts.py).
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import class_row, dict_row

from cuisine_db import records, sql
from cuisine_db.config import Environment, Settings
from cuisine_db.findings import Finding
from cuisine_db.ops.integrity import row_counts
from cuisine_db.ops.integrity.catalog import Catalog, Relation
from cuisine_db.ops.integrity.damage import restore_tables_command
from cuisine_db.ops.integrity.row_counts import Baseline
from cuisine_db.ops.integrity.tasks import Connection, Evidence, Outcome, Task


@dataclass(frozen=True, slots=True)
class Context:
    """What every planner may look at."""

    settings: Settings
    env: Environment
    catalog: Catalog
    tables: frozenset[int] | None  # None: the whole database
    amcheck_schema: str
    server_version: int
    in_recovery: bool
    database: str  # the database connected to (a remote environment's dsn names it)
    database_quoted: str
    baselines: Mapping[str, Baseline] = field(default_factory=dict)  # table -> its rows in the newest backup


Planner = Callable[[Connection, Context], list[Task]]


def _psql(ctx: Context, statement: str) -> str:
    return f"cuisine-db psql --env {ctx.env.name} -c {shlex.quote(statement)}"


def _params(ctx: Context) -> dict[str, Any]:
    return {"tables": sorted(ctx.tables) if ctx.tables is not None else None}


def _whole_database(label: str, check: Callable[[Context, Connection], Outcome]) -> Planner:
    """The planner of a check that is one query over the whole database: one task, counted as one."""

    def plan(conn: Connection, ctx: Context) -> list[Task]:
        return [Task(label, 1, functools.partial(check, ctx))]

    return plan


def _checkable(ctx: Context, rel: Relation) -> bool:
    # A standby has no data for unlogged relations.
    return rel.checkable and not (ctx.in_recovery and rel.persistence == "u")


# --- amcheck ---------------------------------------------------------------------------------------

def _verify_heapam(schema: str, rel: Relation, conn: Connection) -> Outcome:
    query = sql.load("integrity/verify_heapam").format(schema=pgsql.Identifier(schema))
    rows = conn.execute(query, {"oid": rel.oid}).fetchall()
    evidence = []
    for blkno, offnum, attnum, msg in rows:
        where = ", ".join(f"{label} {value}" for label, value in
                          (("block", blkno), ("offset", offnum), ("attribute", attnum)) if value is not None)
        evidence.append(Evidence(rel, f"{where}: {msg}" if where else str(msg), "verify_heapam"))
    return Outcome(evidence=evidence)


def _bt_index_check(schema: str, rel: Relation, conn: Connection) -> Outcome:
    conn.execute(sql.load("integrity/bt_index_check").format(schema=pgsql.Identifier(schema)), {"oid": rel.oid})
    return Outcome()


def heap_tasks(conn: Connection, ctx: Context) -> list[Task]:
    return [Task(f"table {rel.display}", max(rel.pages, 1), functools.partial(_verify_heapam, ctx.amcheck_schema, rel),
                 relation=rel, source="verify_heapam")
            for rel in ctx.catalog.in_scope(ctx.tables) if rel.is_heap and _checkable(ctx, rel)]


def btree_tasks(conn: Connection, ctx: Context) -> list[Task]:
    # heapallindexed reads the table once more, so the table's pages count towards the index's cost.
    return [Task(f"index {rel.display}", max(rel.pages, 1) + ctx.catalog.owner(rel).pages,
                 functools.partial(_bt_index_check, ctx.amcheck_schema, rel), relation=rel, source="bt_index_check")
            for rel in ctx.catalog.in_scope(ctx.tables) if rel.is_btree and _checkable(ctx, rel)]


# --- checksums -------------------------------------------------------------------------------------

def _acknowledged_path(ctx: Context) -> Path:
    return ctx.settings.env_dir(ctx.env) / "integrity.json"


def acknowledge_checksum_failures(settings: Settings, env: Environment, failures: int,
                                  last_failure: datetime | None) -> None:
    """Remember the failures a full corruption check has since found no damage behind, so they stop being reported."""
    path = settings.env_dir(env) / "integrity.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    records.atomic_write(path, json.dumps({"checksum_failures_acknowledged": failures,
                                           "checksum_last_failure_acknowledged": last_failure.isoformat()
                                           if last_failure else None}) + "\n", mode=0o644)


def _acknowledged(ctx: Context) -> tuple[int, str | None]:
    try:
        data = json.loads(_acknowledged_path(ctx).read_text(encoding="utf-8"))
        return int(data.get("checksum_failures_acknowledged", 0)), data.get("checksum_last_failure_acknowledged")
    except (OSError, ValueError):
        return 0, None


def checksum_state(conn: Connection) -> tuple[bool, int, datetime | None]:
    row = conn.execute(sql.load("integrity/checksums")).fetchone()
    assert row is not None  # noqa: S101 - an aggregate always returns one row
    return bool(row[0]), int(row[1]), row[2]


def _checksums(ctx: Context, conn: Connection) -> Outcome:
    enabled, failures, last = checksum_state(conn)
    found = []
    if not enabled:
        found.append(Finding(
            "data checksums", "warning", ctx.database,
            "data checksums are off: a page damaged on disk is only noticed when amcheck or a query trips over it",
            "stop the cluster and run pg_checksums --enable on its data directory (takes as long as reading it)"))
    seen, seen_last = _acknowledged(ctx)
    last_text = last.isoformat() if last else None
    if failures > seen or (last_text is not None and seen_last is not None and last_text > seen_last):
        found.append(Finding(
            "checksum failures", "critical", ctx.database,
            f"the server counted {failures} checksum failure(s) reading this database's pages"
            f"{f', the last at {last:%Y-%m-%d %H:%M:%S %Z}' if last else ''}"
            f"{f' ({seen} already examined)' if seen else ''}",
            f"make db-check-corruption env={ctx.env.name} (names the damaged relations and their repair)"))
    return Outcome(findings=found)


checksum_tasks = _whole_database("data checksums", _checksums)


# --- collations ------------------------------------------------------------------------------------

def _drift_rows(conn: Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(sql.for_server("integrity/collation_drift", conn.info.server_version)).fetchall()


def _collations(ctx: Context, conn: Connection) -> Outcome:
    try:
        rows = _drift_rows(conn)
    except psycopg.OperationalError:
        raise
    except psycopg.DatabaseError as exc:
        # A collation whose provider cannot load it fails the comparison for all of them.
        return Outcome(findings=[Finding(
            "not checked", "warning", "collation versions", f"the comparison failed: {exc.diag.message_primary}",
            "find the collation the operating system or ICU no longer provides (pg_collation)")])
    found = []
    for row in rows:
        if row["kind"] == "database":
            refresh = f"ALTER DATABASE {row['name']} REFRESH COLLATION VERSION"
        else:
            refresh = f"ALTER COLLATION {row['name']} REFRESH VERSION"
        found.append(Finding(
            "collation version", "error", f"{row['kind']} {row['name']}",
            f"recorded version {row['recorded']}, the system now provides {row['actual']}: indexes on text sorted "
            "with the old rules may miss rows or let duplicates in",
            f"{_psql(ctx, f'REINDEX DATABASE CONCURRENTLY {ctx.database_quoted}')}, then {_psql(ctx, refresh)}"))
    return Outcome(findings=found)


collation_tasks = _whole_database("collation versions", _collations)


# --- constraints and indexes the server does not re-check ------------------------------------------

def _not_valid(ctx: Context, conn: Connection) -> Outcome:
    found = []
    for table, name, kind in conn.execute(sql.load("integrity/not_valid_constraints"), _params(ctx)).fetchall():
        found.append(Finding(
            "not valid constraint", "warning", f"{table} {name}",
            f"{kind} constraint added NOT VALID and never validated: existing rows were not checked",
            _psql(ctx, f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")))
    return Outcome(findings=found)


not_valid_tasks = _whole_database("NOT VALID constraints", _not_valid)


def _invalid_indexes(ctx: Context, conn: Connection) -> Outcome:
    found = []
    rows = conn.execute(sql.load("integrity/invalid_indexes"), _params(ctx)).fetchall()
    for index, table, valid, _ready in rows:
        state = "invalid" if not valid else "not ready"
        found.append(Finding(
            "invalid index", "error", index,
            f"{state} index on {table} (a CREATE INDEX or REINDEX CONCURRENTLY that failed): queries ignore it, "
            "writes still maintain it",
            f"{_psql(ctx, f'REINDEX INDEX CONCURRENTLY {index}')} (or DROP INDEX CONCURRENTLY {index} if unwanted)"))
    return Outcome(findings=found)


invalid_index_tasks = _whole_database("invalid indexes", _invalid_indexes)


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    child_schema: str
    child_table: str
    parent_schema: str
    parent_table: str
    child_columns: list[str]
    parent_columns: list[str]
    match_full: bool
    child_indexed: bool
    child_pages: int

    @property
    def child(self) -> str:
        return f"{self.child_schema}.{self.child_table}"

    @property
    def parent(self) -> str:
        return f"{self.parent_schema}.{self.parent_table}"


def _columns(alias: str, names: list[str]) -> pgsql.Composed:
    return pgsql.SQL(", ").join(pgsql.Identifier(alias, name) for name in names)


def _exempt(key: ForeignKey) -> pgsql.Composed:
    """Rows the constraint does not apply to: any key column NULL (MATCH SIMPLE) or all of them (MATCH FULL)."""
    columns = _columns("c", key.child_columns)
    if key.match_full:
        return pgsql.SQL("NOT ({}) IS NULL").format(columns)
    return pgsql.SQL("({}) IS NOT NULL").format(columns)


def _orphans(ctx: Context, key: ForeignKey, conn: Connection) -> Outcome:
    """Count the child rows whose parent is missing; show up to three of their keys."""
    parts = {
        "child": pgsql.Identifier(key.child_schema, key.child_table),
        "parent": pgsql.Identifier(key.parent_schema, key.parent_table),
        "exempt": _exempt(key),
        "child_columns": _columns("c", key.child_columns),
        "parent_columns": _columns("p", key.parent_columns),
    }
    with conn.transaction():
        if key.child_indexed:
            # Merging the two indexes beats hashing the parent's keys, and the planner's costs do not see it
            # (2.5x faster for a 2-million-row child, measured); without a child index, hashing stays best.
            conn.execute(sql.load("integrity/prefer_merge_join"))
        row = conn.execute(sql.load("integrity/fk_orphan_count").format(**parts)).fetchone()
    orphans = row[0] if row is not None else 0
    if not orphans:
        return Outcome()
    examples = conn.execute(sql.load("integrity/fk_orphan_examples").format(**parts)).fetchall()
    shown = ", ".join(str(example[0]) for example in examples)
    parent_arg = key.parent_table if key.parent_schema == "public" else key.parent
    return Outcome(findings=[Finding(
        "orphan rows", "error", f"{key.child} {key.name}",
        f"{orphans} row(s) of {key.child} ({', '.join(key.child_columns)}) reference no row of {key.parent}, "
        f"e.g. {shown}",
        f"{restore_tables_command(ctx.env.name, [parent_arg])} if parent rows were lost; "
        f"otherwise delete or re-point the orphans in {key.child}")])


def foreign_key_tasks(conn: Connection, ctx: Context) -> list[Task]:
    with conn.cursor(row_factory=class_row(ForeignKey)) as cursor:
        keys = cursor.execute(sql.load("integrity/foreign_keys"), _params(ctx)).fetchall()
    # One anti-join per key: with all-visible pages the planner reads only the two indexes, which beats one shared
    # scan of the child's heap; without them it costs about as much. The query reads the child and the parent: a
    # damaged page there is evidence like any other.
    # Counted at a quarter of the child's pages: usually an index, a fraction of the table, is all it reads.
    return [Task(f"foreign key {key.child} {key.name}", max(key.child_pages // 4, 1),
                 functools.partial(_orphans, ctx, key),
                 relation=ctx.catalog.by_plain.get(key.child), source="foreign key check")
            for key in keys]


@dataclass(frozen=True, slots=True)
class OwnedSequence:
    sequence_schema: str
    sequence_name: str
    table_schema: str
    table_name: str
    column_name: str
    increment: int
    identity: bool

    @property
    def sequence(self) -> str:
        return f"{self.sequence_schema}.{self.sequence_name}"


def _sequence(ctx: Context, seq: OwnedSequence, conn: Connection) -> Outcome:
    state = conn.execute(sql.load("integrity/sequence_state").format(
        sequence=pgsql.Identifier(seq.sequence_schema, seq.sequence_name))).fetchone()
    assert state is not None  # noqa: S101 - a sequence always has its one row
    last_value, is_called = state
    next_value = last_value + seq.increment if is_called else last_value
    query = sql.load("integrity/column_range").format(column=pgsql.Identifier(seq.column_name),
                                                       table=pgsql.Identifier(seq.table_schema, seq.table_name))
    row = conn.execute(query).fetchone()
    high, low = row if row is not None else (None, None)
    table = f"{seq.table_schema}.{seq.table_name}"
    if seq.increment > 0 and high is not None and high >= next_value:
        behind, restart = f"the column already holds {high}", high + seq.increment
    elif seq.increment < 0 and low is not None and low <= next_value:
        behind, restart = f"the column already holds {low}", low + seq.increment
    else:
        return Outcome()
    if seq.identity:
        statement = f"ALTER TABLE {table} ALTER COLUMN {seq.column_name} RESTART WITH {restart}"
    else:
        statement = f"ALTER SEQUENCE {seq.sequence} RESTART WITH {restart}"
    return Outcome(findings=[Finding(
        "sequence behind", "error", f"{table}.{seq.column_name}",
        f"{seq.sequence} hands out {next_value} next but {behind}: inserts will fail with duplicate keys "
        "(typical after a restore or a COPY with explicit ids)",
        _psql(ctx, statement))])


def row_count_tasks(conn: Connection, ctx: Context) -> list[Task]:
    return row_counts.tasks(ctx.baselines, ctx.env.name, ctx.catalog.in_scope(ctx.tables))


def sequence_tasks(conn: Connection, ctx: Context) -> list[Task]:
    with conn.cursor(row_factory=class_row(OwnedSequence)) as cursor:
        owned = cursor.execute(sql.load("integrity/owned_sequences"), _params(ctx)).fetchall()
    return [Task(f"sequence {seq.sequence}", 1, functools.partial(_sequence, ctx, seq),
                 relation=ctx.catalog.by_plain.get(f"{seq.table_schema}.{seq.table_name}"), source="sequence check")
            for seq in owned]

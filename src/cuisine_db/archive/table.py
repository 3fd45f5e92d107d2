"""The table an archive run works on: its primary key, the timestamp column that says a row is old, the columns
that travel, and the foreign keys that point at it. Everything a run refuses about a table is refused here,
before anything is written or deleted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from cuisine_db import sql as queries
from cuisine_db.diagnose.table_names import column_names, find_table
from cuisine_db.errors import RefusedError, UnavailableError, UsageError

# The column that dates a row, for tables where it is not `created_at` (the runbook archives executions by start).
DEFAULT_COLUMNS = {"executions": "started_at"}
FALLBACK_COLUMN = "created_at"
TIMESTAMP_TYPES = ("timestamptz", "timestamp", "date")
# ON DELETE actions that change other tables' rows: archiving would reach beyond the rows it saved.
_SPREADING = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    base_type: str
    generated: bool


@dataclass(frozen=True, slots=True)
class Reference:
    """A foreign key from `child` (maybe the table itself) to the table."""

    name: str
    child_schema: str
    child_table: str
    on_delete: str
    child_columns: list[str]
    parent_columns: list[str]

    @property
    def child(self) -> str:
        return f"{self.child_schema}.{self.child_table}"


@dataclass(frozen=True, slots=True)
class ArchiveTable:
    """A table that can be archived: a plain or partitioned table with a primary key and a timestamp column."""

    oid: int
    schema: str
    name: str
    key: list[str]
    column: str
    column_type: str
    columns: list[Column]
    references: list[Reference]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def copied(self) -> list[str]:
        """The columns an archive holds: all but generated ones, which the server computes again on the way back."""
        return [c.name for c in self.columns if not c.generated]

    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def key_sql(self, alias: str | None = None) -> sql.Composable:
        return sql.SQL(", ").join(_names(self.key, alias))

    def copied_sql(self) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(name) for name in self.copied)


def one_row(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """The row of a query that always returns one."""
    if row is None:
        raise UnavailableError("the server returned no row for a query that always returns one")
    return row


def quoted(*parts: str) -> str:
    """Names as the command line would quote them (`"public"."executions"`), for names read from a manifest."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _names(columns: list[str], alias: str | None) -> list[sql.Composable]:
    return [sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in columns]


def pairs(left: str, left_columns: list[str], right: str, right_columns: list[str]) -> sql.Composable:
    """`l.a = r.x AND l.b = r.y`: equality of two column lists under two aliases."""
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(left, a), sql.Identifier(right, b))
        for a, b in zip(left_columns, right_columns, strict=True))


def inspect(conn: psycopg.Connection[Any], table_text: str, column_text: str | None) -> ArchiveTable:
    """The table named on the command line, with what archiving needs to know; bad input is exit 2."""
    found = find_table(conn, table_text)
    if found.kind not in ("r", "p"):
        raise UsageError(f"{table_text!r} is not a table (relkind {found.kind}): only tables' rows can be archived")
    with conn.cursor(row_factory=class_row(Column)) as cursor:
        columns = cursor.execute(queries.load("archive/columns"), {"oid": found.table_oid}).fetchall()
    key = [row[0] for row in conn.execute(queries.load("archive/primary_key"), {"oid": found.table_oid})]
    shown = found.shown
    if not key:
        raise UsageError(f"table {shown} has no primary key: archiving deletes exactly the rows it saved, by "
                         "primary key", hint="add a primary key first (a migration), or archive by hand")
    by_name = {c.name: c for c in columns}
    if column_text is not None:
        named = column_names(column_text)
        if len(named) != 1:
            raise UsageError(f"column={column_text!r} names {len(named)} columns", hint="name one timestamp column")
        chosen = named[0]
        if chosen not in by_name:
            raise UsageError(f"table {shown} has no column {chosen!r}",
                             hint=f"its timestamp columns: {', '.join(_timestamps(columns)) or 'none'}")
    else:
        default = DEFAULT_COLUMNS.get(found.table_name, FALLBACK_COLUMN)
        candidates = _timestamps(columns)
        if default not in by_name:
            raise UsageError(f"table {shown} has no {default} column to date its rows by",
                             hint=f"name one with column= ({', '.join(candidates)})" if candidates
                             else "it has no timestamp or date column: it cannot be archived by age")
        chosen = default
    if by_name[chosen].base_type not in TIMESTAMP_TYPES:
        raise UsageError(f"column {chosen} of {shown} is {by_name[chosen].type}, not a timestamp or date",
                         hint=f"its timestamp columns: {', '.join(_timestamps(columns)) or 'none'}")
    if by_name[chosen].generated:
        raise UsageError(f"column {chosen} of {shown} is generated: name a stored timestamp column")
    with conn.cursor(row_factory=class_row(Reference)) as cursor:
        references = cursor.execute(queries.load("archive/referencing_keys"), {"oid": found.table_oid}).fetchall()
    return ArchiveTable(found.table_oid, found.schema, found.table_name, key, chosen, by_name[chosen].type, columns,
                        references)


def _timestamps(columns: list[Column]) -> list[str]:
    return [c.name for c in columns if c.base_type in TIMESTAMP_TYPES and not c.generated]


def refuse_references(conn: psycopg.Connection[Any], table: ArchiveTable, cutoff: datetime) -> None:
    """Refuse (exit 4) when deleting the old rows would reach other rows: a foreign key that cascades or sets
    null on delete, or old rows that other rows still point at."""
    for ref in table.references:
        if ref.on_delete in _SPREADING:
            raise RefusedError(
                f"{ref.child} references {table.qualified} through {ref.name} with ON DELETE "
                f"{_SPREADING[ref.on_delete]}: deleting archived rows would also change {ref.child}'s rows, which "
                "the archive would not hold", hint=f"archive {ref.child}'s old rows first and keep them apart, or "
                                                   "archive by hand (docs/break-glass.md)")
    for ref in table.references:
        statement = queries.load("archive/referenced_rows").format(
            table=table.ident(), column=sql.Identifier(table.column),
            child=sql.Identifier(ref.child_schema, ref.child_table),
            match=pairs("c", ref.child_columns, "t", ref.parent_columns))
        row = conn.execute(statement, {"cutoff": cutoff}).fetchone()
        if row and row[0]:
            raise RefusedError(
                f"{row[0]:,} rows of {table.qualified} older than the cutoff are still referenced by {ref.child} "
                f"through {ref.name}: they cannot be deleted",
                hint=f"archive {ref.child}'s old rows first (make db-archive-data table={ref.child_table} ...)")


def unreferenced(table: ArchiveTable) -> sql.Composable:
    """`AND NOT EXISTS (...)` per foreign key pointing at the table: a row someone started to reference after the
    export is kept instead of failing the batch."""
    guards = [sql.SQL(" AND NOT EXISTS (SELECT 1 FROM {child} AS c WHERE {match})").format(
        child=sql.Identifier(ref.child_schema, ref.child_table),
        match=pairs("c", ref.child_columns, "t", ref.parent_columns)) for ref in table.references]
    return sql.Composed(guards) if guards else sql.SQL("")

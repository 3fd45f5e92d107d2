"""Risky migration statements, found with PostgreSQL's own parser (pglast) before they reach a busy server.

Each rule is a small function named for what it finds, in the spirit of squawk: it looks at one parsed
statement and returns findings. Tables created in the same migration are exempt from the locking
rules: they are empty, so nothing waits on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pglast
from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from cuisine_db.findings import Finding
from cuisine_db.migrations.files import MigrationFile

Rule = Callable[[ast.Node, MigrationFile, set[str]], Iterator[Finding]]


def _table(relation: ast.RangeVar | None) -> str:
    if relation is None:
        return "?"
    return f"{relation.schemaname}.{relation.relname}" if relation.schemaname else str(relation.relname)


def _finding(check: str, severity: str, migration: MigrationFile, table: str, evidence: str, fix: str) -> Finding:
    return Finding(check, severity, f"{migration.path.name}: {table}", evidence, fix)


def index_without_concurrently(stmt: ast.Node, migration: MigrationFile, new: set[str]) -> Iterator[Finding]:
    if isinstance(stmt, ast.IndexStmt) and not stmt.concurrent and _table(stmt.relation) not in new:
        yield _finding("index-without-concurrently", "warning", migration, _table(stmt.relation),
                       "CREATE INDEX blocks writes to the table until the build finishes",
                       "use CREATE INDEX CONCURRENTLY in a '-- migrate:up transaction:false' migration")


def concurrently_in_transaction(stmt: ast.Node, migration: MigrationFile, new: set[str]) -> Iterator[Finding]:
    concurrent = isinstance(stmt, ast.IndexStmt | ast.DropStmt) and bool(stmt.concurrent)
    if concurrent and migration.up.transaction:
        yield _finding("concurrently-in-transaction", "error", migration, "-",
                       "CONCURRENTLY cannot run inside a transaction block; the migration will fail",
                       "mark the section '-- migrate:up transaction:false'")


def validated_constraint(stmt: ast.Node, migration: MigrationFile, new: set[str]) -> Iterator[Finding]:
    if not isinstance(stmt, ast.AlterTableStmt) or _table(stmt.relation) in new:
        return
    for cmd in stmt.cmds or ():
        constraint = cmd.def_ if isinstance(cmd.def_, ast.Constraint) else None
        if cmd.subtype != AlterTableType.AT_AddConstraint or constraint is None:
            continue
        validated = not constraint.skip_validation
        if constraint.contype in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK) and validated:
            yield _finding("constraint-validated-under-lock", "warning", migration, _table(stmt.relation),
                           "adding a CHECK or FOREIGN KEY scans the whole table while holding a lock",
                           "add it NOT VALID, then VALIDATE CONSTRAINT in a later migration")
        if constraint.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY) and not constraint.indexname:
            yield _finding("unique-constraint-builds-index", "warning", migration, _table(stmt.relation),
                           "adding UNIQUE or PRIMARY KEY builds its index while blocking writes",
                           "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX")


def set_not_null(stmt: ast.Node, migration: MigrationFile, new: set[str]) -> Iterator[Finding]:
    if isinstance(stmt, ast.AlterTableStmt) and _table(stmt.relation) not in new:
        for cmd in stmt.cmds or ():
            if cmd.subtype == AlterTableType.AT_SetNotNull:
                yield _finding("set-not-null-scans-table", "warning", migration, _table(stmt.relation),
                               f"SET NOT NULL on {cmd.name} scans the table under an ACCESS EXCLUSIVE lock",
                               "add CHECK (col IS NOT NULL) NOT VALID, validate it, then SET NOT NULL (PG12+ skips"
                               " the scan)")


def column_type_change(stmt: ast.Node, migration: MigrationFile, new: set[str]) -> Iterator[Finding]:
    if isinstance(stmt, ast.AlterTableStmt) and _table(stmt.relation) not in new:
        for cmd in stmt.cmds or ():
            if cmd.subtype == AlterTableType.AT_AlterColumnType:
                yield _finding("column-type-rewrites-table", "warning", migration, _table(stmt.relation),
                               f"changing the type of {cmd.name} may rewrite the table and its indexes under lock",
                               "add a new column, backfill in batches, switch readers, then drop the old one")


def destructive_change(stmt: ast.Node, migration: MigrationFile, new: set[str]) -> Iterator[Finding]:
    if isinstance(stmt, ast.DropStmt) and stmt.removeType in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_SCHEMA):
        names = ", ".join(".".join(str(p.sval) for p in obj) for obj in stmt.objects or () if isinstance(obj, tuple))
        yield _finding("drops-data", "warning", migration, names or "-",
                       "DROP removes data that only a backup can bring back",
                       "take a backup first (make db-backup) and make sure no code still reads it")
    if isinstance(stmt, ast.AlterTableStmt):
        for cmd in stmt.cmds or ():
            if cmd.subtype == AlterTableType.AT_DropColumn:
                yield _finding("drops-data", "warning", migration, _table(stmt.relation),
                               f"dropping column {cmd.name} removes its data",
                               "stop reading the column in the application first; keep a backup")


def rename(stmt: ast.Node, migration: MigrationFile, new: set[str]) -> Iterator[Finding]:
    if isinstance(stmt, ast.RenameStmt) and stmt.renameType in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN):
        yield _finding("rename-breaks-running-code", "warning", migration, _table(stmt.relation),
                       "renaming a table or column breaks application code still using the old name",
                       "add the new name alongside (a view or a new column), deploy, then remove the old")


def heavy_maintenance(stmt: ast.Node, migration: MigrationFile, new: set[str]) -> Iterator[Finding]:
    full = isinstance(stmt, ast.VacuumStmt) and any(
        getattr(option, "defname", "") == "full" for option in stmt.options or ())
    if full or isinstance(stmt, ast.ClusterStmt):
        yield _finding("rewrites-under-exclusive-lock", "warning", migration, "-",
                       "VACUUM FULL and CLUSTER rewrite the table under an ACCESS EXCLUSIVE lock",
                       "do this in a maintenance window, not in a migration")


RULES: tuple[Rule, ...] = (
    index_without_concurrently, concurrently_in_transaction, validated_constraint, set_not_null,
    column_type_change, destructive_change, rename, heavy_maintenance,
)


def lint(migration: MigrationFile) -> list[Finding]:
    """Findings for a migration's up section; text the parser rejects is reported, not guessed at."""
    try:
        parsed = pglast.parse_sql(migration.up.sql)
    except pglast.parser.ParseError as exc:
        return [_finding("does-not-parse", "error", migration, "-", str(exc),
                         "fix the syntax; the server would reject it too")]
    statements = [raw.stmt for raw in parsed if raw.stmt is not None]
    created = {_table(stmt.relation) for stmt in statements if isinstance(stmt, ast.CreateStmt)}
    return [finding for stmt in statements for rule in RULES for finding in rule(stmt, migration, created)]

"""Migration lint rules about transactions: statements that fail inside one, and BEGIN/COMMIT in the file.

Statements that fail at run time are errors (`migrate up` refuses them on a protected environment). BEGIN/COMMIT
inside the runner's own transaction, and a BEGIN nothing commits, run but lose atomicity or hold locks: warnings.
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.enums import AlterTableType, ReindexObjectType

from cuisine_db.findings import Finding
from cuisine_db.migrations.lint_context import Context

NO_TRANSACTION_FIX = "put it in its own migration whose section is '-- migrate:up transaction:false'"


def _outside_only(stmt: ast.Node, major: int) -> str | None:
    """What the statement is, when PostgreSQL refuses to run it inside a transaction block."""
    if isinstance(stmt, ast.IndexStmt) and stmt.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(stmt, ast.DropStmt) and stmt.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(stmt, ast.ReindexStmt):
        if any(isinstance(p, ast.DefElem) and p.defname == "concurrently" for p in stmt.params or ()):
            return "REINDEX CONCURRENTLY"
        if stmt.kind not in (ReindexObjectType.REINDEX_OBJECT_TABLE, ReindexObjectType.REINDEX_OBJECT_INDEX):
            return "REINDEX SCHEMA/DATABASE/SYSTEM"
    if isinstance(stmt, ast.AlterTableStmt) and any(
            cmd.subtype == AlterTableType.AT_DetachPartition and getattr(cmd.def_, "concurrent", False)
            for cmd in stmt.cmds or () if isinstance(cmd, ast.AlterTableCmd)):
        return "DETACH PARTITION ... CONCURRENTLY"
    if isinstance(stmt, ast.VacuumStmt) and stmt.is_vacuumcmd:
        return "VACUUM"
    if isinstance(stmt, ast.AlterEnumStmt) and stmt.newVal and major < 12:
        return f"ALTER TYPE ... ADD VALUE (before PostgreSQL 12; target is {major})"
    named = {ast.CreatedbStmt: "CREATE DATABASE", ast.DropdbStmt: "DROP DATABASE", ast.AlterSystemStmt: "ALTER SYSTEM",
             ast.CreateTableSpaceStmt: "CREATE TABLESPACE", ast.DropTableSpaceStmt: "DROP TABLESPACE"}
    return next((what for kind, what in named.items() if isinstance(stmt, kind)), None)


def cannot_run_in_transaction(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    what = _outside_only(stmt, ctx.major)
    if what and ctx.in_transaction:
        where = "the runner's transaction" if ctx.transactional else "the BEGIN block this file opened"
        yield ctx.finding("cannot-run-in-transaction", "error", "-",
                          f"{what} cannot run inside a transaction block, and this statement runs in {where}: "
                          "the migration fails at run time (nothing is applied)",
                          NO_TRANSACTION_FIX)


def transaction_control(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    if not isinstance(stmt, ast.TransactionStmt) or stmt.kind is None:
        return
    kind = stmt.kind.name.removeprefix("TRANS_STMT_")
    if kind in ("SAVEPOINT", "RELEASE", "ROLLBACK_TO"):
        return
    if ctx.transactional and kind in ("COMMIT", "ROLLBACK", "PREPARE", "COMMIT_PREPARED", "ROLLBACK_PREPARED"):
        yield ctx.finding("transaction-control", "warning", "-",
                          f"{kind} inside a section the runner already wraps in a transaction ends that transaction "
                          "early: what follows, and the bookkeeping, run outside it, and a later failure leaves half "
                          "a migration applied",
                          "drop BEGIN/COMMIT from the file; the runner makes each migration one transaction")
    elif ctx.transactional and kind in ("BEGIN", "START"):
        yield ctx.finding("transaction-control", "warning", "-",
                          "BEGIN inside a section the runner already wraps in a transaction is ignored with a warning,"
                          " and its COMMIT (if any) would end the runner's transaction early",
                          "drop BEGIN/COMMIT from the file; the runner makes each migration one transaction")


def unclosed_transaction(ctx: Context) -> Iterator[Finding]:
    """After the last statement: a BEGIN in a transaction:false section that nothing commits."""
    if ctx.open_transaction and not ctx.transactional:
        yield ctx.finding("transaction-control", "warning", "-",
                          "the file opens a transaction (BEGIN) and never commits it: it stays open through the rest of"
                          " the run, so its locks are held until the runner's session ends (where it is committed) and"
                          " a later transaction:false migration (CONCURRENTLY, VACUUM) fails inside it",
                          "end the block with COMMIT, or drop the BEGIN")

"""The migration lint rules that concern locks, rewrites and data: one small function per risk.

Each rule looks at one parsed statement with the walk's `Context` (target major, tables new in this file, known
column types) and yields findings whose evidence names the lock, what it blocks and how its duration scales, and
whose fix is the safe rewrite. Rules about transactions live in `lint_transactions.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, DropBehavior, ObjectType, ReindexObjectType

from cuisine_db.findings import Finding
from cuisine_db.migrations.lint_context import CONSTANT, SCALES_WITH_SIZE, Context, held, type_key

Rule = Callable[[ast.Node, Context], Iterator[Finding]]

# Functions whose value is fixed for the statement: a default built from them is evaluated once (free from 11 on).
NON_VOLATILE = {"now", "current_timestamp", "transaction_timestamp", "statement_timestamp", "current_date",
                "current_user", "session_user", "current_setting", "lower", "upper", "jsonb_build_object",
                "json_build_object", "array", "to_jsonb", "make_interval", "coalesce"}
TAKES_BINARY_CAST = {("varchar", "text"), ("text", "varchar"), ("varchar", "varchar"), ("bpchar", "bpchar"),
                     ("numeric", "numeric"), ("varbit", "varbit"), ("cidr", "inet"), ("text", "text")}


def _commands(stmt: ast.Node, ctx: Context) -> Iterator[tuple[ast.RangeVar, ast.AlterTableCmd]]:
    """The commands of an ALTER TABLE on a table that existed before this file, each with that table."""
    if isinstance(stmt, ast.AlterTableStmt) and stmt.relation is not None and not ctx.is_new(stmt.relation):
        yield from ((stmt.relation, cmd) for cmd in stmt.cmds or () if isinstance(cmd, ast.AlterTableCmd))


def _whole_table_under_exclusive(ctx: Context, rule: str, table: str, work: str, fix: str) -> Finding:
    """The warning for work that reads or rewrites every row of `table` while holding ACCESS EXCLUSIVE on it:
    `work` says what does so, ending where the lock sentence (`held`) goes on."""
    return ctx.finding(rule, "warning", table, work + held("ACCESS EXCLUSIVE", table, SCALES_WITH_SIZE), fix)


def index_without_concurrently(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    if isinstance(stmt, ast.IndexStmt) and not stmt.concurrent and not ctx.is_new(stmt.relation):
        table = ctx.name(stmt.relation)
        yield ctx.finding("index-without-concurrently", "warning", table,
                          "CREATE INDEX " + held("SHARE", table, SCALES_WITH_SIZE),
                          "CREATE INDEX CONCURRENTLY in a '-- migrate:up transaction:false' migration")


def drop_index_without_concurrently(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    if not (isinstance(stmt, ast.DropStmt) and stmt.removeType == ObjectType.OBJECT_INDEX and not stmt.concurrent):
        return
    names = [str(obj[-1].sval) for obj in stmt.objects or () if isinstance(obj, tuple) and obj]
    old = [name for name in names if ctx.created_indexes.get(name) not in ctx.created]
    if old:
        yield ctx.finding("drop-index-without-concurrently", "warning", ", ".join(old),
                          "DROP INDEX " + held("ACCESS EXCLUSIVE", "the index's table", CONSTANT),
                          "DROP INDEX CONCURRENTLY in a '-- migrate:up transaction:false' migration")


def reindex_without_concurrently(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    if not isinstance(stmt, ast.ReindexStmt) or _concurrent(stmt.params):
        return
    if stmt.kind in (ReindexObjectType.REINDEX_OBJECT_TABLE, ReindexObjectType.REINDEX_OBJECT_INDEX):
        target = str(stmt.relation.relname) if stmt.relation else "?"
        fix = ("REINDEX ... CONCURRENTLY in a '-- migrate:up transaction:false' migration" if ctx.major >= 12 else
               "build a new index CONCURRENTLY, then drop the old one CONCURRENTLY")
        yield ctx.finding("reindex-without-concurrently", "warning", target,
                          "REINDEX " + held("SHARE", "the table", SCALES_WITH_SIZE)
                          + " (and ACCESS EXCLUSIVE on each index, so reads that use it wait too)", fix)


def _concurrent(params: tuple[ast.Node, ...] | None) -> bool:
    return any(isinstance(p, ast.DefElem) and p.defname == "concurrently" for p in params or ())


def detach_partition_without_concurrently(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    for relation, cmd in _commands(stmt, ctx):
        if cmd.subtype == AlterTableType.AT_DetachPartition and not getattr(cmd.def_, "concurrent", False):
            parent = ctx.name(relation)
            fix = ("DETACH PARTITION ... CONCURRENTLY in a '-- migrate:up transaction:false' migration"
                   if ctx.major >= 14 else "upgrade to 14 for DETACH ... CONCURRENTLY, or detach in a quiet window")
            yield ctx.finding("detach-partition-without-concurrently", "warning", parent,
                              "DETACH PARTITION " + held("ACCESS EXCLUSIVE", f"{parent} and the partition", CONSTANT),
                              fix)


def validated_constraint(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    for relation, cmd in _commands(stmt, ctx):
        constraint = cmd.def_ if isinstance(cmd.def_, ast.Constraint) else None
        if cmd.subtype == AlterTableType.AT_AddConstraint and constraint is not None:
            yield from _constraint(relation, ctx, constraint, "ADD CONSTRAINT")
        column = cmd.def_ if isinstance(cmd.def_, ast.ColumnDef) else None
        if cmd.subtype == AlterTableType.AT_AddColumn and column is not None:
            for inline in column.constraints or ():
                if isinstance(inline, ast.Constraint):
                    yield from _constraint(relation, ctx, inline, f"ADD COLUMN {column.colname} ...")


def _constraint(relation: ast.RangeVar, ctx: Context, constraint: ast.Constraint, what: str) -> Iterator[Finding]:
    table = ctx.name(relation)
    if constraint.contype == ConstrType.CONSTR_FOREIGN and not constraint.skip_validation:
        target = str(constraint.pktable.relname) if constraint.pktable else "the referenced table"
        yield ctx.finding("constraint-validated-under-lock", "warning", table,
                          f"{what} REFERENCES validates every row while it "
                          + held("SHARE ROW EXCLUSIVE", f"{table} and {target}", SCALES_WITH_SIZE),
                          "add the column plain, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE "
                          "CONSTRAINT in a later migration (it takes only SHARE UPDATE EXCLUSIVE)")
    if constraint.contype == ConstrType.CONSTR_CHECK and not constraint.skip_validation:
        yield _whole_table_under_exclusive(
            ctx, "constraint-validated-under-lock", table, f"{what} CHECK scans every row while it ",
            "ADD CONSTRAINT ... CHECK (...) NOT VALID, then VALIDATE CONSTRAINT in a later migration")
    if constraint.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY) and not constraint.indexname:
        yield _whole_table_under_exclusive(
            ctx, "unique-constraint-builds-index", table, f"{what} UNIQUE/PRIMARY KEY builds its index while it ",
            "CREATE UNIQUE INDEX CONCURRENTLY (transaction:false), then ADD CONSTRAINT ... UNIQUE USING "
            "INDEX (or PRIMARY KEY USING INDEX)")


def validate_in_same_transaction(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    for relation, cmd in _commands(stmt, ctx):
        lock = ctx.not_valid.get((ctx.resolve(relation), str(cmd.name)))
        if cmd.subtype == AlterTableType.AT_ValidateConstraint and ctx.in_transaction and lock:
            table = ctx.name(relation)
            yield ctx.finding("validate-in-same-transaction", "warning", table,
                              f"VALIDATE CONSTRAINT {cmd.name} runs in the transaction that added it NOT VALID, so the"
                              " ADD's lock is still held through the scan: " + held(lock, table, SCALES_WITH_SIZE),
                              "move VALIDATE CONSTRAINT to a later migration (or a transaction:false section)")


def _default_rewrites(column: ast.ColumnDef, major: int) -> str | None:
    """Why adding this column rewrites the table, or None when it only touches the catalog."""
    base = type_key(column.typeName)[0] if column.typeName else ""
    if base in ("serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"):
        return f"a {base} column's default nextval() is volatile, so every existing row gets its own value"
    for constraint in column.constraints or ():
        if not isinstance(constraint, ast.Constraint):
            continue
        if constraint.contype == ConstrType.CONSTR_GENERATED:
            return "a GENERATED ... STORED column is computed and written for every existing row"
        if constraint.contype == ConstrType.CONSTR_IDENTITY:
            return "an identity column fills every existing row from its sequence"
        if constraint.contype == ConstrType.CONSTR_DEFAULT and constraint.raw_expr is not None:
            if major < 11:
                return f"before PostgreSQL 11 any DEFAULT is written into every row (target is {major})"
            volatile = _volatile_call(constraint.raw_expr)
            if volatile:
                return f"DEFAULT {volatile}() is volatile, so every existing row is rewritten with its own value"
    return None


def _volatile_call(expr: ast.Node) -> str | None:
    """The first function in the expression not known to be stable or immutable."""
    if isinstance(expr, ast.FuncCall):
        name = str(expr.funcname[-1].sval) if expr.funcname else "?"
        if name not in NON_VOLATILE:
            return name
        return next((found for arg in expr.args or () if isinstance(arg, ast.Node) and (found := _volatile_call(arg))),
                    None)
    if isinstance(expr, ast.TypeCast) and expr.arg is not None:
        return _volatile_call(expr.arg)
    if isinstance(expr, ast.A_Expr):
        return next((found for side in (expr.lexpr, expr.rexpr) if isinstance(side, ast.Node)
                     and (found := _volatile_call(side))), None)
    return None


def add_column(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    for relation, cmd in _commands(stmt, ctx):
        column = cmd.def_ if isinstance(cmd.def_, ast.ColumnDef) else None
        if cmd.subtype != AlterTableType.AT_AddColumn or column is None:
            continue
        table = ctx.name(relation)
        reason = _default_rewrites(column, ctx.major)
        if reason:
            yield _whole_table_under_exclusive(
                ctx, "add-column-rewrites-table", table, f"ADD COLUMN {column.colname}: {reason}; the rewrite ",
                "add the column with no default (or a constant one), set the default for new rows, "
                "backfill existing rows in batches")
        kinds = {c.contype for c in column.constraints or () if isinstance(c, ast.Constraint)}
        not_null = column.is_not_null or ConstrType.CONSTR_NOTNULL in kinds or ConstrType.CONSTR_PRIMARY in kinds
        filled = kinds & {ConstrType.CONSTR_DEFAULT, ConstrType.CONSTR_GENERATED, ConstrType.CONSTR_IDENTITY}
        if not_null and not filled and not reason:
            yield ctx.finding("add-column-not-null-without-default", "error", table,
                              f"ADD COLUMN {column.colname} NOT NULL without a DEFAULT fails on any table that has rows"
                              " (existing rows would be NULL)",
                              "add it with a constant DEFAULT (free from 11 on), or add it nullable, backfill, then "
                              "add NOT NULL through a NOT VALID CHECK")


def set_not_null(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    for relation, cmd in _commands(stmt, ctx):
        if cmd.subtype == AlterTableType.AT_SetNotNull:
            table = ctx.name(relation)
            yield _whole_table_under_exclusive(
                ctx, "set-not-null-scans-table", table, f"SET NOT NULL on {cmd.name} scans every row while it ",
                "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration,"
                " then SET NOT NULL (12+ skips the scan) and drop the CHECK")


def column_type_change(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    for relation, cmd in _commands(stmt, ctx):
        column = cmd.def_ if isinstance(cmd.def_, ast.ColumnDef) else None
        if cmd.subtype != AlterTableType.AT_AlterColumnType or column is None or column.typeName is None:
            continue
        old = ctx.columns.get(ctx.resolve(relation), {}).get(str(cmd.name))
        if column.raw_default is None and _free_type_change(old, column.typeName):
            continue
        table = ctx.name(relation)
        known = f"from {type_key(old)[0]} " if old is not None else ""
        yield _whole_table_under_exclusive(
            ctx, "column-type-rewrites-table", table,
            f"changing {cmd.name} {known}to {type_key(column.typeName)[0]} rewrites the table and its "
            "indexes while it ",
            "add a new column, backfill it in batches, switch readers, then drop the old one "
            "(widening varchar or numeric precision, or varchar to text, is free)")


def _free_type_change(old: ast.TypeName | None, new: ast.TypeName) -> bool:
    """True when the change only edits the catalog: a binary-compatible cast that loosens or keeps the limit."""
    to_base, to_mods, to_array = type_key(new)
    if old is None:
        # Unknown origin: widening to text or unlimited varchar is the everyday free case; anything else may rewrite.
        return to_base in ("text", "varchar") and not to_mods and not to_array
    from_base, from_mods, from_array = type_key(old)
    if (from_base, to_base) not in TAKES_BINARY_CAST or from_array != to_array:
        return False
    if not to_mods:
        return from_base != "bpchar"
    if not from_mods or len(from_mods) != len(to_mods):
        return False
    if from_base == "numeric":
        return to_mods[0] >= from_mods[0] and to_mods[1:] == from_mods[1:]
    return to_mods[0] >= from_mods[0] and from_base != "bpchar"


def drops_data(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    if isinstance(stmt, ast.DropStmt) and stmt.removeType in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_SCHEMA):
        dropped = [".".join(str(p.sval) for p in obj) for obj in stmt.objects or () if isinstance(obj, tuple)]
        old = [n for n in dropped if stmt.removeType == ObjectType.OBJECT_SCHEMA
               or not ctx.is_new(ast.RangeVar(relname=n.split(".")[-1],
                                              schemaname=n.split(".")[0] if "." in n else None))]
        if old:
            yield ctx.finding("drops-data", "warning", ", ".join(old),
                              "DROP removes data that only a backup can bring back; it "
                              + held("ACCESS EXCLUSIVE", ", ".join(old), CONSTANT),
                              "take a backup first (make db-backup) and make sure no code still reads it")
    if isinstance(stmt, ast.DropdbStmt):
        yield ctx.finding("drops-data", "warning", str(stmt.dbname),
                          "DROP DATABASE removes a whole database; it waits for (or, WITH (FORCE), ends) every session"
                          " connected to it, for a constant time",
                          "take a backup first (make db-backup type=logical) and drop it by hand, not in a migration")
    if isinstance(stmt, ast.TruncateStmt) and stmt.behavior != DropBehavior.DROP_CASCADE:
        names = ", ".join(ctx.name(rel) for rel in stmt.relations or () if isinstance(rel, ast.RangeVar))
        yield ctx.finding("drops-data", "warning", names,
                          "TRUNCATE removes every row; it " + held("ACCESS EXCLUSIVE", names, CONSTANT),
                          "take a backup first (make db-backup); delete in batches if readers must go on")
    for relation, cmd in _commands(stmt, ctx):
        if cmd.subtype == AlterTableType.AT_DropColumn:
            table = ctx.name(relation)
            yield ctx.finding("drops-data", "warning", table,
                              f"dropping column {cmd.name} removes its data; it "
                              + held("ACCESS EXCLUSIVE", table, CONSTANT),
                              "stop reading the column in the application first; keep a backup")


def truncate_cascade(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    if isinstance(stmt, ast.TruncateStmt) and stmt.behavior == DropBehavior.DROP_CASCADE:
        names = ", ".join(ctx.name(rel) for rel in stmt.relations or () if isinstance(rel, ast.RangeVar))
        yield ctx.finding("truncate-cascade", "error", names,
                          "TRUNCATE ... CASCADE also empties every table that references these, tables the file "
                          "never names; it " + held("ACCESS EXCLUSIVE", "all of them", CONSTANT),
                          "name every table to empty explicitly (and take a backup first)")


def rename(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    if (isinstance(stmt, ast.RenameStmt) and stmt.renameType in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN)
            and not ctx.is_new(stmt.relation)):
        yield ctx.finding("rename-breaks-running-code", "warning", ctx.name(stmt.relation),
                          "renaming a table or column breaks application code still using the old name; it "
                          + held("ACCESS EXCLUSIVE", ctx.name(stmt.relation), CONSTANT),
                          "add the new name alongside (a view or a new column), deploy, then remove the old")


def heavy_maintenance(stmt: ast.Node, ctx: Context) -> Iterator[Finding]:
    full = isinstance(stmt, ast.VacuumStmt) and any(
        getattr(option, "defname", "") == "full" for option in stmt.options or ())
    if full or isinstance(stmt, ast.ClusterStmt):
        yield ctx.finding("rewrites-under-exclusive-lock", "warning", "-",
                          "VACUUM FULL and CLUSTER rewrite the table while they "
                          + held("ACCESS EXCLUSIVE", "the table", SCALES_WITH_SIZE),
                          "do this in a maintenance window (or use pg_repack), not in a migration")


RULES: tuple[Rule, ...] = (
    index_without_concurrently, drop_index_without_concurrently, reindex_without_concurrently,
    detach_partition_without_concurrently, validated_constraint, validate_in_same_transaction, add_column,
    set_not_null, column_type_change, drops_data, truncate_cascade, rename, heavy_maintenance,
)

"""What the migration linter knows while it walks a file: the target major, new tables, column types, transactions.

Rules read this context and never change it; `lint.py` advances it after each statement, so "created earlier in
the same file" means earlier, and a name resolves the way the server would (search_path, default `public`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pglast import ast
from pglast.enums import AlterTableType, ConstrType

from cuisine_db.findings import Finding
from cuisine_db.migrations.files import MigrationFile

# The oldest major cuisine-db supports: the most cautious target when none is given.
DEFAULT_MAJOR = 14

Table = tuple[str, str]

# What each lock level stops other sessions from doing while it is held.
BLOCKS = {
    "ACCESS EXCLUSIVE": "every read and write of the table",
    "SHARE": "writes (INSERT, UPDATE, DELETE) to the table; reads go on",
    "SHARE ROW EXCLUSIVE": "writes to the table; reads go on",
    "SHARE UPDATE EXCLUSIVE": "other schema changes, VACUUM and ANALYZE on the table; reads and writes go on",
}
SCALES_WITH_SIZE = "a time that grows with the table's size (a full scan or rewrite)"
CONSTANT = "a short, constant time (a catalog change), but it queues behind every running query on the table"
RUNNER_TIMEOUT = ("the runner's lock_timeout and retries already bound the wait to get the lock, so no SET lock_timeout"
                  " is needed; they do not shorten how long it is held")


def held(lock: str, table: str, duration: str) -> str:
    """The evidence sentence every locking finding carries: which lock, what it blocks, how long it scales."""
    return f"takes {lock} on {table}, blocking {BLOCKS[lock]}, for {duration}; {RUNNER_TIMEOUT}"


def type_key(type_name: ast.TypeName) -> tuple[str, tuple[int, ...], bool]:
    """A column type as (base name, integer modifiers, is array): `varchar(20)` is ("varchar", (20,), False)."""
    names = [str(part.sval) for part in type_name.names or () if isinstance(part, ast.String)]
    base = names[-1] if names else "?"
    mods = tuple(int(mod.val.ival) for mod in type_name.typmods or ()
                 if isinstance(mod, ast.A_Const) and isinstance(mod.val, ast.Integer) and mod.val.ival is not None)
    return base, mods, bool(type_name.arrayBounds)


@dataclass
class Context:
    """The state of one walk through a migration's up section."""

    migration: MigrationFile
    major: int = DEFAULT_MAJOR
    transactional: bool = True
    search_path: list[str] = field(default_factory=lambda: ["public"])
    created: set[Table] = field(default_factory=set)
    created_indexes: dict[str, Table] = field(default_factory=dict)
    columns: dict[Table, dict[str, ast.TypeName]] = field(default_factory=dict)
    # Constraints added NOT VALID in the current transaction, with the lock their ADD took.
    not_valid: dict[tuple[Table, str], str] = field(default_factory=dict)
    open_transaction: bool = False

    @property
    def in_transaction(self) -> bool:
        """Whether the statement runs inside a transaction block: the runner's, or a BEGIN in the file."""
        return self.transactional or self.open_transaction

    def resolve(self, relation: ast.RangeVar | None) -> Table:
        """(schema, table) for a name: a bare name is looked up in the file's new tables along search_path."""
        if relation is None:
            return ("?", "?")
        name = str(relation.relname)
        if relation.schemaname:
            return (str(relation.schemaname), name)
        for schema in self.search_path:
            if (schema, name) in self.created:
                return (schema, name)
        # A bare name that matches exactly one table created earlier in this file is that table: a file that says
        # `CREATE TABLE app.t` and then `ALTER TABLE t` means the table it just made.
        matches = [table for table in self.created if table[1] == name]
        return matches[0] if len(matches) == 1 else (self.search_path[0] if self.search_path else "public", name)

    def is_new(self, relation: ast.RangeVar | None) -> bool:
        return self.resolve(relation) in self.created

    def name(self, relation: ast.RangeVar | None) -> str:
        schema, table = self.resolve(relation)
        return table if schema == "public" else f"{schema}.{table}"

    def finding(self, check: str, severity: str, subject: str, evidence: str, fix: str) -> Finding:
        return Finding(check, severity, f"{self.migration.path.name}: {subject}", evidence, fix)

    def remember(self, stmt: ast.Node) -> None:
        """Advance the context past one statement (after the rules have looked at it)."""
        if isinstance(stmt, ast.CreateStmt):
            table = self.resolve_new(stmt.relation)
            self.created.add(table)
            self.columns[table] = {str(col.colname): col.typeName for col in stmt.tableElts or ()
                                   if isinstance(col, ast.ColumnDef) and col.typeName is not None}
        elif isinstance(stmt, ast.IndexStmt) and stmt.idxname:
            self.created_indexes[str(stmt.idxname)] = self.resolve(stmt.relation)
        elif isinstance(stmt, ast.AlterTableStmt):
            self._remember_alter(stmt)
        elif isinstance(stmt, ast.VariableSetStmt) and stmt.name == "search_path" and stmt.args:
            self.search_path = [str(arg.val.sval) for arg in stmt.args
                                if isinstance(arg, ast.A_Const) and isinstance(arg.val, ast.String)]
        elif isinstance(stmt, ast.TransactionStmt) and stmt.kind is not None:
            kind = stmt.kind.name
            if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
                self.open_transaction = True
            elif kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"):
                self.open_transaction = False
                self.not_valid.clear()

    def resolve_new(self, relation: ast.RangeVar | None) -> Table:
        """A table being created lands in the first schema of search_path unless it names one."""
        if relation is not None and relation.schemaname:
            return (str(relation.schemaname), str(relation.relname))
        return (self.search_path[0] if self.search_path else "public", str(relation.relname) if relation else "?")

    def _remember_alter(self, stmt: ast.AlterTableStmt) -> None:
        table = self.resolve(stmt.relation)
        for cmd in stmt.cmds or ():
            column = cmd.def_ if isinstance(cmd.def_, ast.ColumnDef) else None
            if cmd.subtype == AlterTableType.AT_AddColumn and column is not None and column.typeName is not None:
                self.columns.setdefault(table, {})[str(column.colname)] = column.typeName
            elif cmd.subtype == AlterTableType.AT_AlterColumnType and column is not None and column.typeName:
                self.columns.setdefault(table, {})[str(cmd.name)] = column.typeName
            constraint = cmd.def_ if isinstance(cmd.def_, ast.Constraint) else None
            if (cmd.subtype == AlterTableType.AT_AddConstraint and constraint is not None
                    and constraint.skip_validation and constraint.conname
                    and constraint.contype in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK)
                    and self.in_transaction):
                foreign = constraint.contype == ConstrType.CONSTR_FOREIGN
                lock = "SHARE ROW EXCLUSIVE" if foreign else "ACCESS EXCLUSIVE"
                self.not_valid[(table, str(constraint.conname))] = lock


def learn_columns(context: Context, statements: list[ast.Node]) -> None:
    """Column types from earlier migrations, so a type change knows what it changes from."""
    saved = (set(context.created), dict(context.created_indexes), context.open_transaction, dict(context.not_valid))
    for stmt in statements:
        context.remember(stmt)
    context.created, context.created_indexes, context.open_transaction, context.not_valid = saved
    context.search_path = ["public"]

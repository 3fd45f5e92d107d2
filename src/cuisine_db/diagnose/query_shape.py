"""What a statement is and which columns it filters, joins and sorts on, read with PostgreSQL's own parser (pglast).

db-explain uses it to refuse anything but one explainable statement and to count `$n` parameters; index
advice uses it to find, per table, the columns an index could serve. Statements from pg_stat_statements
are normalised (`$1` for every constant) and parse like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pglast
from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, SortByDir
from pglast.visitors import Visitor

from cuisine_db.errors import UsageError

_KINDS = {ast.SelectStmt: "select", ast.InsertStmt: "insert", ast.UpdateStmt: "update", ast.DeleteStmt: "delete",
          ast.MergeStmt: "merge"}
_WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
_RANGE_OPERATORS = {"<", ">", "<=", ">="}


@dataclass(frozen=True, slots=True)
class Relation:
    schema: str | None
    name: str
    alias: str | None


@dataclass(slots=True)
class Scope:
    """One SELECT, UPDATE or DELETE level: its tables and the column references around them."""

    relations: list[Relation] = field(default_factory=list)
    # (qualifier, column, how): how is "eq", "range" or "join".
    predicates: list[tuple[str | None, str, str]] = field(default_factory=list)
    order: list[tuple[str | None, str, bool]] | None = None  # (qualifier, column, descending)
    limited: bool = False


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """One explainable statement."""

    text: str
    kind: str
    parameters: int
    writes: bool
    scopes: tuple[Scope, ...]


@dataclass(frozen=True, slots=True)
class TableUse:
    """How one statement uses one table: what an index on it could serve."""

    schema: str | None
    table: str
    equality: tuple[str, ...]
    ranges: tuple[str, ...]
    joins: tuple[str, ...]
    order: tuple[str, ...]
    order_descending: bool
    limited: bool


class _Collector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.parameters = 0
        self.writes = False
        self.levels: list[ast.Node] = []

    def visit_ParamRef(self, ancestors: object, node: ast.ParamRef) -> None:
        self.parameters = max(self.parameters, node.number or 0)

    def visit(self, ancestors: object, node: ast.Node) -> None:
        if isinstance(node, _WRITES):
            self.writes = True
        if isinstance(node, ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt):
            self.levels.append(node)


def parse_one(text: str) -> ParsedQuery:
    """The statement, if `text` holds exactly one that EXPLAIN accepts; otherwise a usage error saying why."""
    if not text.strip():
        raise UsageError("no query given",
                         hint='e.g. make db-explain query="SELECT * FROM recipes WHERE user_id = 123"')
    try:
        parsed = pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        raise UsageError(f"the query is not valid SQL: {exc}") from None
    if len(parsed) != 1:
        raise UsageError(f"give one statement, not {len(parsed)}",
                         hint="explain each statement on its own") if parsed else UsageError("no query given")
    raw = parsed[0]
    stmt = raw.stmt
    if isinstance(stmt, ast.ExplainStmt):
        raise UsageError("give the query without EXPLAIN", hint="db-explain adds EXPLAIN (ANALYZE, BUFFERS) itself")
    kind = next((name for cls, name in _KINDS.items() if isinstance(stmt, cls)), None)
    if kind is None:
        raise UsageError(f"EXPLAIN cannot take a {type(stmt).__name__.removesuffix('Stmt')} statement",
                         hint="give a SELECT, INSERT, UPDATE, DELETE or MERGE")
    encoded = text.encode()
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(encoded)
    collector = _Collector()
    collector(raw)
    return ParsedQuery(text=encoded[start:end].decode().strip(), kind=kind,
                       parameters=collector.parameters, writes=collector.writes,
                       scopes=tuple(_scope(level) for level in collector.levels))


# --- column usage ---------------------------------------------------------------------------------------
def _column(node: object) -> tuple[str | None, str] | None:
    if not isinstance(node, ast.ColumnRef) or not node.fields:
        return None
    names = [part.sval for part in node.fields if isinstance(part, ast.String) and part.sval is not None]
    if len(names) != len(node.fields):  # a star
        return None
    return (names[-2] if len(names) >= 2 else None, names[-1])


def _is_value(node: object) -> bool:
    """A constant, a parameter, or an expression of them (now() - interval '1 day'): no column, no subquery."""
    found: list[bool] = []

    class Probe(Visitor):
        def visit(self, ancestors: object, inner: ast.Node) -> None:
            if isinstance(inner, ast.ColumnRef | ast.SubLink):
                found.append(True)

    if node is None:
        return False
    if isinstance(node, tuple):
        return bool(node) and all(_is_value(item) for item in node)
    if isinstance(node, ast.Node):
        Probe()(node)
    return not found


def _conjuncts(node: object) -> Iterator[object]:
    if isinstance(node, ast.BoolExpr):
        if node.boolop == BoolExprType.AND_EXPR:
            for arg in node.args or ():
                yield from _conjuncts(arg)
        return  # OR and NOT: no single index column serves them
    if node is not None:
        yield node


def _predicates(where: object) -> Iterator[tuple[str | None, str, str]]:
    for node in _conjuncts(where):
        if not isinstance(node, ast.A_Expr):
            continue
        operator = node.name[-1].sval if node.name else ""
        left, right = _column(node.lexpr), _column(node.rexpr)
        if node.kind in (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_OP_ANY, A_Expr_Kind.AEXPR_IN) and operator == "=":
            if left and right:
                yield (*left, "join")
                yield (*right, "join")
            elif left and _is_value(node.rexpr):
                yield (*left, "eq")
            elif right and _is_value(node.lexpr):
                yield (*right, "eq")
        elif node.kind == A_Expr_Kind.AEXPR_OP and operator in _RANGE_OPERATORS:
            if left and _is_value(node.rexpr):
                yield (*left, "range")
            elif right and _is_value(node.lexpr):
                yield (*right, "range")
        elif node.kind == A_Expr_Kind.AEXPR_BETWEEN and left:
            yield (*left, "range")


def _from_items(items: object, scope: Scope) -> None:
    for item in items or ():  # type: ignore[attr-defined]
        if isinstance(item, ast.RangeVar) and item.relname:
            scope.relations.append(Relation(item.schemaname, item.relname,
                                            item.alias.aliasname if item.alias else None))
        elif isinstance(item, ast.JoinExpr):
            _from_items((item.larg, item.rarg), scope)
            scope.predicates += _predicates(item.quals)


def _scope(level: ast.Node) -> Scope:
    scope = Scope()
    if isinstance(level, ast.SelectStmt):
        _from_items(level.fromClause, scope)
        scope.predicates += _predicates(level.whereClause)
        scope.limited = level.limitCount is not None
        if level.sortClause:
            order = []
            for item in level.sortClause:
                column = _column(item.node)
                if column is None:
                    break
                order.append((*column, item.sortby_dir == SortByDir.SORTBY_DESC))
            else:
                scope.order = order
    elif isinstance(level, ast.UpdateStmt | ast.DeleteStmt):
        _from_items((level.relation,), scope)
        _from_items(level.fromClause if isinstance(level, ast.UpdateStmt) else level.usingClause, scope)
        scope.predicates += _predicates(level.whereClause)
    return scope


def _owner(scope: Scope, qualifier: str | None, column: str, columns_of: Callable[[Relation], set[str]]
           ) -> Relation | None:
    """The table a column reference belongs to: by alias or name when qualified, else the one table having it."""
    if qualifier is not None:
        named = [r for r in scope.relations if (r.alias or r.name) == qualifier]
    else:
        named = [r for r in scope.relations if column in columns_of(r)]
    return named[0] if len(named) == 1 else None


def _use(scope: Scope, relation: Relation, columns_of: Callable[[Relation], set[str]]) -> TableUse:
    def mine(how: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(column for qualifier, column, kind in scope.predicates
                                   if kind == how and _owner(scope, qualifier, column, columns_of) == relation))

    order: tuple[str, ...] = ()
    descending = False
    if scope.order and all(_owner(scope, q, c, columns_of) == relation for q, c, _ in scope.order):
        directions = {desc for _, _, desc in scope.order}
        if len(directions) == 1:  # mixed directions need a DESC column in the index: left to people
            order = tuple(c for _, c, _ in scope.order)
            descending = directions.pop()
    return TableUse(relation.schema, relation.name, mine("eq"), mine("range"), mine("join"), order, descending,
                    scope.limited)


def table_uses(parsed: ParsedQuery, columns_of: Callable[[Relation], set[str]]) -> list[TableUse]:
    """Per table, the columns the statement compares, joins and sorts on, resolved against the table's columns."""
    uses = [_use(scope, relation, columns_of) for scope in parsed.scopes for relation in dict.fromkeys(scope.relations)]
    return [use for use in uses if use.equality or use.ranges or use.joins or use.order]

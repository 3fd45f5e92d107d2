"""Recommended indexes for the statements that cost the most time (db-analyze, db-analyze-table).

Two methods, and each recommendation says which produced it:

* **hypopg** (where the server offers it): every candidate index is created as a hypothetical index and
  the statement's generic plan is compared before and after; the planner's saving, weighted by the
  statement's total time, ranks the recommendation. The extension is installed inside a transaction that
  is always rolled back, so the database is left as it was.
* **rules (pg_stats)** otherwise: from the columns a statement filters and sorts on and their pg_stats
  selectivity, an index is recommended when it would narrow the rows read per call tenfold (most common
  value, the worst case), or when the best existing index leaves 100 or more rows to sort before a LIMIT.

Dexter does the first and needs hypopg; PgHero does neither. We wrote our own because neither runs as a
library here and both miss the ORDER BY ... LIMIT case that the Cuisine Code application is full of.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.diagnose import pgss
from cuisine_db.diagnose.explain import generic_plan, set_local
from cuisine_db.diagnose.index_checks import IndexRow, qualified
from cuisine_db.diagnose.plan_diagnosis import nodes
from cuisine_db.diagnose.query_shape import ParsedQuery, Relation, TableUse, parse_one, table_uses
from cuisine_db.errors import UsageError

HYPOPG = "hypopg"
RULES = "rules (pg_stats)"
MAX_COLUMNS = 4


@dataclass(frozen=True, slots=True)
class ColumnStats:
    table_oid: int
    schema: str
    table_name: str
    table_rows: float
    column_name: str
    n_distinct: float | None
    null_frac: float | None
    top_frequency: float | None
    position: int = 0


@dataclass(slots=True)
class TableStats:
    """A table's size and, per column, the share of rows one value matches (average and most common)."""

    table_oid: int
    schema: str
    name: str
    rows: float
    average: dict[str, float] = field(default_factory=dict)
    top: dict[str, float] = field(default_factory=dict)
    columns: set[str] = field(default_factory=set)

    def rows_for(self, columns: Iterable[str], worst: bool = True) -> float:
        """Rows matched per call by equality on `columns` (independence assumed): most common value, or average."""
        share = 1.0
        for column in columns:
            share *= (self.top if worst else self.average).get(column, 1.0)
        return self.rows * share


@dataclass(frozen=True, slots=True)
class AdvisedStatement:
    queryid: int | None
    query: str
    calls: int
    total_ms: float
    detail: str


@dataclass(frozen=True, slots=True)
class IndexRecommendation:
    """An index worth creating, the statements it serves, and the command that creates it."""

    table: str
    columns: tuple[str, ...]
    method: str
    benefit_ms: float  # the statements' total time, times the planner's saving (hypopg) or 1 (rules)
    statements: tuple[AdvisedStatement, ...]
    command: str


@dataclass(frozen=True, slots=True)
class Advice:
    recommendations: list[IndexRecommendation]
    method: str
    notes: list[str]


# --- statistics -----------------------------------------------------------------------------------------
def _selectivity(row: ColumnStats) -> tuple[float, float] | None:
    """(average, most common) share of the table one value matches, from pg_stats; None without statistics."""
    if row.n_distinct is None or row.table_rows <= 0:
        return None
    present = 1.0 - (row.null_frac or 0.0)
    distinct = row.n_distinct if row.n_distinct > 0 else -row.n_distinct * row.table_rows
    average = present / max(distinct, 1.0)
    return average, max(average, row.top_frequency or 0.0)


def load_tables(conn: psycopg.Connection[Any], relations: Sequence[Relation]) -> dict[Relation, TableStats]:
    """The statistics of every relation a statement names (those that are not user tables are left out)."""
    if not relations:
        return {}
    rows = queries.rows(conn, ColumnStats, queries.load("performance/advice_tables"),
                        {"schemas": [r.schema for r in relations], "names": [r.name for r in relations]})
    found: dict[Relation, TableStats] = {}
    for row in rows:
        relation = relations[row.position - 1]
        table = found.setdefault(relation, TableStats(row.table_oid, row.schema, row.table_name, row.table_rows))
        table.columns.add(row.column_name)
        shares = _selectivity(row)
        if shares is not None:
            table.average[row.column_name], table.top[row.column_name] = shares
    return found


# --- candidates -----------------------------------------------------------------------------------------
def _leading(index: IndexRow, equality: Sequence[str]) -> list[str]:
    """The index's leading keys that are equality columns: what it narrows the rows by."""
    keys = index.columns[: index.key_count]
    lead: list[str] = []
    for column in keys:
        if column is None or column not in equality or column in lead:
            break
        lead.append(column)
    return lead


def _provides_order(index: IndexRow, lead: Sequence[str], order: Sequence[str]) -> bool:
    keys = index.columns[: index.key_count]
    return bool(order) and list(keys[len(lead): len(lead) + len(order)]) == list(order)


def _usable(index: IndexRow) -> bool:
    return index.is_valid and index.predicate is None and index.method == "btree"


def covered(columns: Sequence[str], equality: Sequence[str], indexes: Iterable[IndexRow]) -> IndexRow | None:
    """Among one table's indexes, one whose leading keys are the candidate (equality columns in any order, then
    the rest)."""
    eq = [c for c in columns if c in equality]
    rest = list(columns[len(eq):])
    for index in indexes:
        if not _usable(index):
            continue
        keys = list(index.columns[: index.key_count])
        if len(keys) >= len(columns) and set(keys[: len(eq)]) == set(eq) and keys[len(eq): len(columns)] == rest:
            return index
    return None


def rule_candidate(use: TableUse, table: TableStats, indexes: Sequence[IndexRow], *, min_rows: float = 1_000,
                   sort_rows: float = 100, factor: float = 10, max_share: float = 0.1
                   ) -> tuple[tuple[str, ...], str] | None:
    """The index the rules recommend for one statement's use of one table, with the reason; None if none helps."""
    if table.rows < min_rows:
        return None
    equality = sorted((c for c in use.equality if c in table.average), key=lambda c: table.average[c])
    order = [c for c in use.order if c not in equality] if use.limited else []
    columns = tuple((equality + order)[:MAX_COLUMNS])
    mine = [i for i in indexes if _usable(i) and i.table_oid == table.table_oid]
    if not columns or covered(columns, equality, mine):
        return None
    best_rows, best_name, best_orders = table.rows, "a sequential scan", False
    for index in mine:
        lead = _leading(index, equality)
        rows = table.rows_for(lead)
        if lead and rows < best_rows:
            best_rows, best_name, best_orders = rows, index.index_name, _provides_order(index, lead, order)
    new_rows = table.rows_for(equality)
    eq_text = " and ".join(f"{c} = $n" for c in equality) or "no filter"
    if equality and new_rows * factor <= best_rows and new_rows <= max_share * table.rows:
        return columns, (f"{eq_text} matches up to {new_rows:,.0f} of {table.rows:,.0f} rows (most common value); "
                         f"{best_name} leaves {best_rows:,.0f} to read")
    if order and not best_orders and new_rows >= sort_rows:
        return columns, (f"ORDER BY {', '.join(order)} LIMIT: with {best_name}, each call sorts up to "
                         f"{new_rows:,.0f} rows ({eq_text}, most common value) to return the first few; "
                         f"({', '.join(columns)}) returns them in order and stops at the limit")
    return None


def hypothetical_candidates(use: TableUse, table: TableStats, indexes: Sequence[IndexRow]) -> list[tuple[str, ...]]:
    """Indexes worth trying on a table: single columns, the equality set, and it followed by a sort or range."""
    equality = sorted((c for c in use.equality if c in table.columns), key=lambda c: table.average.get(c, 1.0))
    order = [c for c in use.order if c not in equality]
    indexes = [i for i in indexes if i.table_oid == table.table_oid]
    tried: list[tuple[str, ...]] = []
    options = [tuple(equality), tuple(equality + order), *(tuple([*equality, r]) for r in use.ranges),
               *((c,) for c in itertools.chain(use.equality, use.ranges, use.joins, use.order[:1]))]
    for columns in options:
        columns = tuple(dict.fromkeys(c for c in columns if c in table.columns))[:MAX_COLUMNS]
        if columns and columns not in tried and not covered(columns, equality, indexes):
            tried.append(columns)
    return tried[:8]


# --- the two methods ------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Merged:
    table: TableStats
    columns: tuple[str, ...]
    method: str
    benefit_ms: float = 0.0
    statements: list[AdvisedStatement] = field(default_factory=list)


def _statement(entry: pgss.Statement, detail: str) -> AdvisedStatement:
    return AdvisedStatement(entry.queryid, entry.query, entry.calls, entry.total_ms, detail)


def _cost(plan: dict[str, Any]) -> float:
    return float(plan["Plan"]["Total Cost"]) if "Plan" in plan else float(plan["Total Cost"])


def _with_hypopg(conn: psycopg.Connection[Any], schema: str, work: list[tuple[pgss.Statement, ParsedQuery,
                 list[tuple[TableUse, TableStats]]]], indexes: Sequence[IndexRow], min_saving: float,
                 merged: dict[tuple[int, tuple[str, ...]], _Merged]) -> None:
    create = queries.load("performance/hypopg_create").format(schema=sql.Identifier(schema))
    reset = queries.load("performance/hypopg_reset").format(schema=sql.Identifier(schema))
    for entry, parsed, uses in work:
        made: dict[str, tuple[TableStats, tuple[str, ...]]] = {}
        try:
            with conn.transaction():  # a savepoint: a statement that cannot be planned is skipped alone
                before = _cost(generic_plan(conn, parsed))
                for use, table in uses:
                    for columns in hypothetical_candidates(use, table, indexes):
                        ddl = queries.load("performance/hypothetical_index").format(
                            table=sql.Identifier(table.schema, table.name),
                            columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns)).as_string(conn)
                        row = conn.execute(create, {"statement": ddl}).fetchone()
                        if row is not None:
                            made[str(row[1])] = (table, columns)
                after_plan = generic_plan(conn, parsed)
        except psycopg.Error:
            continue
        finally:
            # Hypothetical indexes live in the session, not the transaction: forget them before the next statement.
            conn.execute(reset)
        after = _cost(after_plan)
        used = {str(node["Index Name"]) for _, node in nodes(after_plan["Plan"]) if node.get("Index Name")} & set(made)
        saving = 1 - after / before if before > 0 else 0.0
        if not used or saving < min_saving:
            continue
        for name in sorted(used):
            table, columns = made[name]
            key = (table.table_oid, columns)
            item = merged.setdefault(key, _Merged(table, columns, HYPOPG))
            item.benefit_ms += entry.total_ms * saving
            item.statements.append(_statement(entry, f"planner cost {before:,.1f} -> {after:,.1f} "
                                                     f"({saving:.0%} less) with ({', '.join(columns)})"))


def _with_rules(work: Iterable[tuple[pgss.Statement, ParsedQuery, list[tuple[TableUse, TableStats]]]],
                indexes: Sequence[IndexRow], merged: dict[tuple[int, tuple[str, ...]], _Merged]) -> None:
    for entry, _, uses in work:
        for use, table in uses:
            found = rule_candidate(use, table, indexes)
            if found is None:
                continue
            columns, reason = found
            item = merged.setdefault((table.table_oid, columns), _Merged(table, columns, RULES))
            item.benefit_ms += entry.total_ms
            item.statements.append(_statement(entry, reason))


def _hypopg_schema(conn: psycopg.Connection[Any], notes: list[str]) -> str | None:
    """hypopg's schema, installing it in the current (to be rolled back) transaction when the server offers it."""
    available, schema = conn.execute(queries.load("performance/hypopg_status")).fetchone() or (False, None)
    if schema is not None:
        return str(schema)
    if not available:
        notes.append("hypopg is not available on this server: recommendations come from rules on pg_stats "
                     "(install postgresql-<version>-hypopg for cost-based advice)")
        return None
    try:
        with conn.transaction():
            conn.execute(queries.load("performance/hypopg_enable"))
    except psycopg.errors.InsufficientPrivilege:
        notes.append("hypopg is available but this role may not create it: recommendations come from rules on "
                     "pg_stats (a superuser can run CREATE EXTENSION hypopg)")
        return None
    found = conn.execute(queries.load("performance/hypopg_status")).fetchone()
    return str(found[1]) if found and found[1] else None


def recommend(conn: psycopg.Connection[Any], env_name: str, statements: Sequence[pgss.Statement],
              indexes: Sequence[IndexRow], *, method: str = "auto", table_oid: int | None = None,
              min_saving: float = 0.5) -> Advice:
    """Indexes for the given statements (most expensive first), by hypopg or by rules; the connection must not
    be in autocommit mode: everything happens in a transaction that is rolled back."""
    if method not in ("auto", "hypopg", "rules"):
        raise UsageError(f"unknown method {method!r}", hint="method=auto, hypopg or rules")
    notes: list[str] = []
    parsed: list[tuple[pgss.Statement, ParsedQuery]] = []
    for entry in statements:
        try:
            shape = parse_one(entry.query)
        except UsageError:
            continue
        if shape.kind in ("select", "update", "delete"):
            parsed.append((entry, shape))
    relations = list(dict.fromkeys(r for _, shape in parsed for scope in shape.scopes for r in scope.relations))
    merged: dict[tuple[int, tuple[str, ...]], _Merged] = {}
    used_method = RULES
    try:
        tables = load_tables(conn, relations)

        def columns_of(relation: Relation) -> set[str]:
            return tables[relation].columns if relation in tables else set()

        work = []
        for entry, shape in parsed:
            uses = [(use, tables[Relation(use.schema, use.table, None)]) for use in table_uses(shape, columns_of)
                    if Relation(use.schema, use.table, None) in tables]
            uses = [(use, table) for use, table in uses if table_oid is None or table.table_oid == table_oid]
            if uses:
                work.append((entry, shape, uses))
        schema = _hypopg_schema(conn, notes) if method != "rules" else None
        if method == "hypopg" and schema is None:
            raise UsageError("method=hypopg, but hypopg cannot be used here", hint="; ".join(notes) or None)
        if schema is not None:
            used_method = HYPOPG
            set_local(conn, "statement_timeout", "10000")
            _with_hypopg(conn, schema, work, indexes, min_saving, merged)
        else:
            _with_rules(work, indexes, merged)
    finally:
        conn.rollback()
    ranked = sorted(merged.values(), key=lambda m: -m.benefit_ms)
    return Advice([_recommendation(item, env_name) for item in ranked], used_method, notes)


def _recommendation(item: _Merged, env_name: str) -> IndexRecommendation:
    table = qualified(item.table.schema, item.table.name)
    statements = tuple(sorted(item.statements, key=lambda s: -s.total_ms))
    command = f"make db-create-index env={env_name} table={table} columns={','.join(item.columns)}"
    return IndexRecommendation(table, item.columns, item.method, round(item.benefit_ms, 1), statements, command)


"""The runbook's "explain a specific query" (db-explain): EXPLAIN (ANALYZE, BUFFERS) in a transaction that is
always rolled back, under a statement timeout, with a short diagnosis of the plan."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.plan_diagnosis import diagnose, nodes
from cuisine_db.diagnose.query_shape import ParsedQuery, parse_one
from cuisine_db.durations import shown
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.findings import Finding
from cuisine_db.postgres import connect

GENERIC_PLAN_VERSION = 160000
# PREPARE is not transactional: each statement gets its own name, so one that failed mid-way cannot block the next.
_PREPARED = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ExplainResult:
    """The plan (EXPLAIN's JSON "Plan" tree), its timings when it ran, and what the diagnosis found."""

    env: str
    query: str
    analyzed: bool
    generic: bool
    plan: dict[str, Any]
    planning_ms: float | None
    execution_ms: float | None
    findings: list[Finding]
    notes: list[str]


def set_local(conn: psycopg.Connection[Any], name: str, value: str) -> None:
    conn.execute(queries.load("performance/set_local"), {"name": name, "value": value})


def generic_plan(conn: psycopg.Connection[Any], parsed: ParsedQuery) -> dict[str, Any]:
    """The plan for unknown parameter values: EXPLAIN (GENERIC_PLAN) on 16+, a prepared statement below.

    Runs inside the caller's transaction, which must be rolled back afterwards.
    """
    query = sql.SQL(parsed.text)  # one explainable statement, checked by PostgreSQL's parser
    if conn.info.server_version >= GENERIC_PLAN_VERSION or parsed.parameters == 0:
        statement = "performance/explain_generic" if parsed.parameters else "performance/explain_plan"
        row = conn.execute(queries.load(statement).format(query=query)).fetchone()
    else:
        name = sql.Identifier(f"cuisine_db_explain_{next(_PREPARED)}")
        conn.execute(queries.load("performance/prepare").format(name=name, query=query))
        try:
            set_local(conn, "plan_cache_mode", "force_generic_plan")
            arguments = sql.SQL(", ").join([sql.NULL] * parsed.parameters)
            row = conn.execute(queries.load("performance/explain_execute").format(
                name=name, arguments=arguments)).fetchone()
        finally:
            if conn.info.transaction_status != TransactionStatus.INERROR:
                conn.execute(queries.load("performance/deallocate").format(name=name))
    assert row is not None  # noqa: S101 - EXPLAIN always returns its plan
    return dict(row[0][0])


def _explain(conn: psycopg.Connection[Any], parsed: ParsedQuery, params: Sequence[str] | None, *, analyze: bool
             ) -> dict[str, Any]:
    name = "performance/explain_analyze" if analyze else "performance/explain_plan"
    statement = queries.load(name).format(query=sql.SQL(parsed.text))
    if params:
        # PostgreSQL's own $n placeholders; the values travel separately and the server infers their types.
        with psycopg.RawCursor(conn) as cursor:
            row = cursor.execute(statement, list(params)).fetchone()
    else:
        row = conn.execute(statement).fetchone()
    assert row is not None  # noqa: S101 - EXPLAIN always returns its plan
    return dict(row[0][0])


@contextmanager
def _explained_errors(timeout_ms: int) -> Iterator[None]:
    """Server errors as one line each; the transaction is rolled back whatever happens."""
    try:
        yield
    except psycopg.errors.QueryCanceled:
        raise FailedError(f"the query ran past the {shown(timeout_ms)} statement timeout and was cancelled; "
                          "nothing was changed",
                          hint="timeout=120s to let it run longer, or analyze=0 for the plan without running it"
                          ) from None
    except psycopg.errors.LockNotAvailable:
        raise FailedError("the query waited too long for a lock held by another session and was cancelled; "
                          "nothing was changed", hint="see who holds it: make db-show-locks") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise UsageError(f"permission denied: {exc.diag.message_primary}",
                         hint="explain it as a role that may run the query") from None
    except (psycopg.errors.SyntaxErrorOrAccessRuleViolation, psycopg.errors.DataException) as exc:
        raise UsageError(f"the server refused the query: {exc.diag.message_primary}",
                         hint=exc.diag.message_hint) from None
    except psycopg.errors.ReadOnlySqlTransaction:
        raise UsageError("the query writes (through a function) although it is a SELECT; nothing was changed",
                         hint="analyze=0 shows its plan without running it") from None
    except psycopg.Error as exc:
        raise FailedError(f"the query failed: {exc.diag.message_primary or exc}; nothing was changed") from None


def _table_rows(conn: psycopg.Connection[Any], plan: dict[str, Any]) -> dict[str, float]:
    names = sorted({str(node["Relation Name"]) for _, node in nodes(plan) if node.get("Relation Name")})
    if not names:
        return {}
    rows = conn.execute(queries.load("performance/relation_rows"), {"names": names}).fetchall()
    return {name: float(count) for name, count in rows}


def explain(settings: Settings, env: Environment, query: str, *, analyze: bool = True,
            params: Sequence[str] | None = None, timeout_ms: int | None = None) -> ExplainResult:
    """EXPLAIN one statement; with analyze it runs, inside a transaction that is always rolled back."""
    parsed = parse_one(query)
    timeout_ms = timeout_ms or round(env.explain_timeout_seconds * 1000)
    notes: list[str] = []
    if params is not None and len(params) != parsed.parameters:
        raise UsageError(f"the query has {parsed.parameters} parameter(s) ($1..${parsed.parameters}) "
                         f"but {len(params)} value(s) were given")
    generic = parsed.parameters > 0 and not params
    if generic:
        notes.append(f"the query has parameters ($1..${parsed.parameters}): this is the generic plan, for unknown "
                     "values; give params=v1,v2 to run it with values")
    run = analyze and not generic
    with connect(settings, env, "explain", autocommit=False) as conn:
        try:
            with _explained_errors(timeout_ms):
                if not parsed.writes:
                    conn.execute(queries.load("performance/read_only"))
                set_local(conn, "statement_timeout", str(timeout_ms))
                set_local(conn, "lock_timeout", env.lock_timeout)
                explained = run or bool(params)
                whole = _explain(conn, parsed, params, analyze=run) if explained else generic_plan(conn, parsed)
        finally:
            conn.rollback()
        rows = _table_rows(conn, whole["Plan"])
        conn.rollback()
    if run and parsed.writes:
        notes.append(f"the {parsed.kind.upper()} ran and was rolled back: no row changed (sequences may have "
                     "advanced)")
    plan = dict(whole["Plan"])
    return ExplainResult(
        env=env.name, query=parsed.text, analyzed=run, generic=generic, plan=plan,
        planning_ms=whole.get("Planning Time"), execution_ms=whole.get("Execution Time"),
        findings=diagnose(plan, env.name, rows, large_rows=env.large_table_rows), notes=notes)

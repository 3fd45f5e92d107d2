"""The runbook's "explain a specific query" (db-explain): EXPLAIN (ANALYZE, BUFFERS) in a transaction that is
always rolled back, under a statement timeout, with a short diagnosis of the plan.

The statement is whatever a person typed, so it runs as the `explain` purpose role (security/roles.py), never
as admin: a role with table privileges on the application's schemas only, no superuser, no predefined role that
signals sessions or touches server files, no dblink or foreign-data wrapper. A rollback undoes row changes, not
what lives outside the transaction (sequences, a function's side effects), and the messages say which.
"""

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
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.plan_diagnosis import diagnose, nodes
from cuisine_db.diagnose.query_shape import ParsedQuery, parse_one
from cuisine_db.durations import shown
from cuisine_db.errors import FailedError, RefusedError, UsageError
from cuisine_db.findings import Finding
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.postgres import purposes

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


def undone(parsed: ParsedQuery, ran: bool) -> str:
    """What the rollback undid, and what no rollback can undo, for a statement that ran (or did not)."""
    if not ran:
        return "it did not run"
    if not parsed.writes:
        return "it ran read-only and was rolled back"
    return ("it was rolled back: its row changes are undone, but sequences it advanced and what functions it called "
            "did outside the transaction are not")


@contextmanager
def _explained_errors(timeout_ms: int, parsed: ParsedQuery, ran: bool) -> Iterator[None]:
    """Server errors as one line each; the transaction is rolled back whatever happens."""
    after = undone(parsed, ran)
    try:
        yield
    except psycopg.errors.QueryCanceled:
        raise FailedError(f"the query ran past the {shown(timeout_ms)} statement timeout and was cancelled; {after}",
                          hint="timeout=120s to let it run longer, or analyze=0 for the plan without running it"
                          ) from None
    except psycopg.errors.LockNotAvailable:
        raise FailedError("the query waited too long for a lock held by another session and was cancelled; "
                          f"{after}", hint="see who holds it: make db-show-locks") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise UsageError(f"permission denied to db-explain's role: {exc.diag.message_primary}",
                         hint="db-explain may read and write the application's tables only; for a table created "
                              "since setup-roles ran, run make db-setup-roles again") from None
    except (psycopg.errors.SyntaxErrorOrAccessRuleViolation, psycopg.errors.DataException) as exc:
        # Only the primary message: a value in an error's detail (a cast of a file read, say) is not echoed.
        raise UsageError(f"the server refused the query: {exc.diag.message_primary}",
                         hint=exc.diag.message_hint) from None
    except psycopg.errors.ReadOnlySqlTransaction:
        raise UsageError("the query writes (through a function) although it is a SELECT; it ran read-only and "
                         "was rolled back", hint="analyze=0 shows its plan without running it") from None
    except psycopg.Error as exc:
        raise FailedError(f"the query failed: {exc.diag.message_primary or exc}; {after}") from None


def _role_ready(settings: Settings, env: Environment) -> list[str]:
    """Make sure db-explain has its own role: created on a local cluster, else a refusal naming setup-roles."""
    if purposes.is_set_up(settings, env, "explain"):
        return []
    if not env.is_local:
        raise RefusedError(
            f"db-explain runs statements as its own least-privileged role, and {env.name!r} has none configured; "
            "it never runs them as the admin role",
            hint=f"make db-setup-roles env={env.name}, then add the roles.explain line it prints to cuisine-db.toml")
    from cuisine_db.ops.journal import journaled
    from cuisine_db.security.roles import setup_roles

    with journaled(settings, env, "security setup-roles", {"only": "explain", "for": "db-explain"}):
        made = setup_roles(settings, env, only=("explain",))
    role = made.roles[0].role
    return [f"created {role}, the role db-explain runs statements as (tables of the application only), as "
            f"make db-setup-roles env={env.name} does"]


def _refuse_reach(conn: psycopg.Connection[Any], env: Environment) -> None:
    """Refuse to run a statement as a role that can signal sessions, touch server files or leave the transaction."""
    powers = [row[0] for row in conn.execute(queries.load("security/explain_reach")).fetchall()]
    conn.rollback()
    if powers:
        raise RefusedError(
            f"db-explain's role {conn.info.user!r} on {env.name!r} can do more than read and write the application's "
            f"tables, so the statement is not run: {'; '.join(powers)}",
            hint="dblink is executable by every role unless revoked: REVOKE EXECUTE ON its functions FROM PUBLIC "
                 "and grant them to the roles that use it; other powers: make db-setup-roles again, or configure "
                 "roles.explain as a role without them; analyze=0 shows the plan without running it")


def _table_rows(conn: psycopg.Connection[Any], plan: dict[str, Any]) -> dict[str, float]:
    names = sorted({str(node["Relation Name"]) for _, node in nodes(plan) if node.get("Relation Name")})
    if not names:
        return {}
    rows = conn.execute(queries.load("performance/relation_rows"), {"names": names}).fetchall()
    return {name: float(count) for name, count in rows}


def confirmation_needed(env: Environment, query: str, *, analyze: bool = True,
                        params: Sequence[str] | None = None) -> str | None:
    """What needs confirming before db-explain runs the query: a write with ANALYZE on a protected environment."""
    parsed = parse_one(query)
    run = analyze and not (parsed.parameters > 0 and not params)
    if run and parsed.writes and env.protected:
        return (f"Running this {parsed.kind.upper()} with ANALYZE (it executes, its locks held and its triggers and "
                "cascades fired, before the rollback)")
    return None


def explain(settings: Settings, env: Environment, query: str, *, analyze: bool = True,
            params: Sequence[str] | None = None, timeout_ms: int | None = None, yes: bool = False,
            ask: Ask | None = None) -> ExplainResult:
    """EXPLAIN one statement as the explain role; with analyze it runs, inside a transaction always rolled back. A
    write run with ANALYZE on a protected environment needs `yes` or the environment's name typed to `ask`."""
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
    action = confirmation_needed(env, query, analyze=analyze, params=params)
    if action and not yes and ask is not None:
        confirmation.require(env, action, yes=False, ask=ask)  # before any connection, as the refusal below
    elif action and not yes:
        # Refused before any connection: not one lock is taken.
        raise RefusedError(f"{action} on protected environment {env.name!r} needs confirmation",
                           hint="add yes=1 (or --yes) once you are sure, or analyze=0 for the plan without running it")
    notes += _role_ready(settings, env)
    with connect(settings, env, "explain", autocommit=False, purpose="explain") as conn:
        runner = conn.info.user
        if run:
            _refuse_reach(conn, env)
        try:
            with _explained_errors(timeout_ms, parsed, run):
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
        notes.append(f"the {parsed.kind.upper()} ran as {runner} and {undone(parsed, run).removeprefix('it ')}")
    plan = dict(whole["Plan"])
    return ExplainResult(
        env=env.name, query=parsed.text, analyzed=run, generic=generic, plan=plan,
        planning_ms=whole.get("Planning Time"), execution_ms=whole.get("Execution Time"),
        findings=diagnose(plan, env.name, rows, large_rows=env.large_table_rows), notes=notes)

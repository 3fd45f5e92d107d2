"""Connection usage (db-connections): slots in use, who holds them, leaks, and the runbook's remedies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.query_text import shown
from cuisine_db.diagnose.session import diagnostic
from cuisine_db.findings import Finding
from cuisine_db.humanize import duration


@dataclass(frozen=True, slots=True)
class Session:
    """One client session, as pg_stat_activity shows it (the query redacted and shortened)."""

    pid: int
    database: str
    username: str
    application: str
    client: str
    state: str
    xact_seconds: float | None
    query_seconds: float | None
    state_seconds: float | None
    wait_event_type: str | None
    wait_event: str | None
    query: str


@dataclass(frozen=True, slots=True)
class _Slots:
    max_connections: int
    reserved: int
    in_use: int


@dataclass(frozen=True, slots=True)
class ConnectionUsage:
    """Slots against the limit ordinary roles can reach, broken down five ways, with the leaks."""

    env: str
    max_connections: int
    reserved: int
    available: int
    in_use: int
    share: float
    by_database: dict[str, int]
    by_user: dict[str, int]
    by_application: dict[str, int]
    by_client: dict[str, int]
    by_state: dict[str, int]
    idle_in_transaction: list[Session]
    oldest_transaction: Session | None
    sessions: list[Session]


def _counts(sessions: Sequence[Session], key: Callable[[Session], str]) -> dict[str, int]:
    return dict(Counter(key(session) or "(none)" for session in sessions).most_common())


def read_sessions(conn: psycopg.Connection[Any]) -> list[Session]:
    return [replace(row, query=shown(row.query)) for row in sql.rows(conn, Session, sql.load("diagnose/sessions"))]


def usage_from(conn: psycopg.Connection[Any], env: Environment) -> ConnectionUsage:
    """Connection usage read on an open connection (this session is not counted)."""
    slots = sql.one(conn, _Slots, sql.load("diagnose/connection_slots"))
    sessions = read_sessions(conn)
    available = max(slots.max_connections - slots.reserved, 1)
    idle = sorted((s for s in sessions if s.state.startswith("idle in transaction")),
                  key=lambda s: s.state_seconds or 0.0, reverse=True)
    open_transactions = [s for s in sessions if s.xact_seconds is not None]
    oldest = max(open_transactions, key=lambda s: s.xact_seconds or 0.0) if open_transactions else None
    return ConnectionUsage(
        env=env.name,
        max_connections=slots.max_connections,
        reserved=slots.reserved,
        available=available,
        in_use=slots.in_use,
        share=round(slots.in_use / available, 4),
        by_database=_counts(sessions, lambda s: s.database),
        by_user=_counts(sessions, lambda s: s.username),
        by_application=_counts(sessions, lambda s: s.application),
        by_client=_counts(sessions, lambda s: s.client),
        by_state=_counts(sessions, lambda s: s.state),
        idle_in_transaction=idle,
        oldest_transaction=oldest,
        sessions=sessions,
    )


def connection_usage(settings: Settings, env: Environment) -> ConnectionUsage:
    """Connection usage of the environment's server."""
    with diagnostic(settings, env, "db-connections") as conn:
        return usage_from(conn, env)


def slot_usage(usage: ConnectionUsage, *, warning: float = 0.80, critical: float = 0.95) -> list[Finding]:
    """Connections near the limit, with the runbook's four remedies."""
    if usage.share < warning:
        return []
    top_app, top_count = next(iter(usage.by_application.items()), ("(none)", 0))
    return [Finding(
        check="connection pool usage",
        severity="critical" if usage.share >= critical else "warning",
        subject=f"{usage.in_use} of {usage.available} connection slots",
        evidence=(f"{usage.share:.0%} in use (max_connections {usage.max_connections} minus {usage.reserved} "
                  f"reserved); most held by application {top_app!r} ({top_count}); "
                  f"{len(usage.idle_in_transaction)} idle in transaction"),
        fix=("1. look for leaks (sessions idle in transaction, below); 2. lower the application's pool size; "
             "3. raising max_connections needs a restart: make db-update-config env="
             f"{usage.env} param=max_connections value={usage.max_connections * 2}; "
             "4. put PgBouncer (transaction pooling) in front of the server"),
    )]


def idle_in_transaction(usage: ConnectionUsage, *, seconds: float = 60) -> list[Finding]:
    """Sessions idle inside an open transaction for too long: the runbook's connection leaks."""
    return [Finding(
        check="idle in transaction",
        severity="warning",
        subject=f"pid {s.pid} ({s.username}@{s.database}, application {s.application or '(none)'!r}, {s.client})",
        evidence=(f"idle in transaction for {duration(s.state_seconds)} (transaction open "
                  f"{duration(s.xact_seconds)}); last query: {s.query}"),
        fix=("a connection leak: the application began a transaction and stopped; fix its transaction handling, "
             "set idle_in_transaction_session_timeout, or end it: "
             f"make db-terminate-query env={usage.env} pid={s.pid}"),
    ) for s in usage.idle_in_transaction if (s.state_seconds or 0.0) >= seconds]


def long_transactions(usage: ConnectionUsage, *, seconds: float = 3600) -> list[Finding]:
    """Transactions open for too long, whatever they are doing: they hold back vacuum everywhere."""
    return [Finding(
        check="long transaction",
        severity="warning",
        subject=f"pid {s.pid} ({s.username}@{s.database}, application {s.application or '(none)'!r})",
        evidence=f"transaction open for {duration(s.xact_seconds)}, now {s.state}; query: {s.query}",
        fix=("dead rows cannot be vacuumed while it stays open; commit or roll it back in the application, "
             f"or end it: make db-terminate-query env={usage.env} pid={s.pid}"),
    ) for s in usage.sessions if (s.xact_seconds or 0.0) >= seconds
        and not s.state.startswith("idle in transaction")]


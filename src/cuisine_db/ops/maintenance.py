"""Maintenance mode: application roles cannot connect, their sessions are ended, and on disable each role gets
back exactly the connection limit it had. The tool's own roles (monitoring, backup, operator, replication, the
pooler's auth role) stay connected: monitoring must see the maintenance, not go blind during it.

The previous limits are written to the environment's state folder *before* any role is changed, so a crash
between enable and disable loses nothing: disable (or enable again) finishes from that file. Superusers ignore
connection limits, so they are never application roles; neither is the role this tool connects as.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, PoolerConfig, Settings
from cuisine_db.errors import FailedError, RefusedError, ServerDownError, UsageError
from cuisine_db.ops.journal import journaled
from cuisine_db.ops.maintenance_state import MaintenanceState as MaintenanceState
from cuisine_db.ops.maintenance_state import save
from cuisine_db.ops.maintenance_state import state as state
from cuisine_db.ops.maintenance_state import state_path as state_path
from cuisine_db.postgres import purposes
from cuisine_db.whoami import who

DEFAULT_REASON = "maintenance (no reason given)"


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    env: str
    on: bool
    reason: str | None = None
    who: str | None = None
    since: datetime | None = None
    roles: dict[str, int] = field(default_factory=dict)        # saved previous limits
    limits_now: dict[str, int] = field(default_factory=dict)   # what the server says now
    sessions: dict[str, int] = field(default_factory=dict)     # application sessions still connected
    terminated: int = 0
    ended: dict[str, int] = field(default_factory=dict)        # sessions ended, per role
    left_connected: dict[str, str] = field(default_factory=dict)  # the tool's own roles on the server: what for
    server_reached: bool = True  # False: the server was down, only the window was recorded
    notes: list[str] = field(default_factory=list)


def tool_roles(env: Environment) -> dict[str, str]:
    """The roles cuisine-db itself connects as (name: what for); maintenance mode never blocks them."""
    roles = {purposes.role_name(env, purpose): f"the tool's {purpose} role" for purpose in purposes.PURPOSES}
    roles.setdefault(purposes.REPLICATION_ROLE, "the replicas' replication role")
    roles.setdefault((env.pooler or PoolerConfig()).auth_user, "the pooler's auth role")
    return roles


def _login_roles(conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return {row["name"]: row for row in cursor.execute(queries.load("maintenance/login_roles"))}


def application_roles(conn: psycopg.Connection[Any], env: Environment) -> dict[str, int]:
    """The roles maintenance mode blocks, with their connection limits now."""
    roles = _login_roles(conn)
    own = tool_roles(env)
    configured = env.maintenance.application_roles
    if configured is None:
        exempt = set(env.maintenance.exempt_roles) | set(own)
        return {name: row["connlimit"] for name, row in roles.items()
                if not (row["superuser"] or row["replication"] or row["is_current"] or name in exempt)}
    chosen = {}
    for name in configured:
        row = roles.get(name)
        if row is None:
            raise UsageError(f"environments.{env.name}.maintenance.application_roles names {name!r}, "
                             "which is not a login role on the server")
        if row["superuser"] or row["is_current"] or name in own:
            raise UsageError(f"environments.{env.name}.maintenance.application_roles: maintenance mode cannot block "
                             f"{name!r}: it is "
                             + ("a superuser (connection limits do not apply)" if row["superuser"]
                                else "the role cuisine-db connects as" if row["is_current"]
                                else f"{own[name]}, which stays connected so the tool keeps working during it"))
        chosen[name] = row["connlimit"]
    return chosen


def _set_limits(conn: psycopg.Connection[Any], limits: dict[str, int]) -> None:
    try:
        with conn.transaction():
            for role, limit in sorted(limits.items()):
                conn.execute(queries.load("maintenance/set_connection_limit").format(
                    role=sql.Identifier(role), limit=sql.Literal(limit)))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise FailedError(f"cannot change connection limits: {exc.diag.message_primary}",
                          hint="maintenance mode needs a role with CREATEROLE (or a superuser) in the dsn") from None


def _sessions(conn: psycopg.Connection[Any], roles: list[str]) -> dict[str, int]:
    rows = conn.execute(queries.load("maintenance/role_sessions"), {"roles": roles}).fetchall()
    return {row[0]: row[1] for row in rows}


def enable(settings: Settings, env: Environment, reason: str | None) -> MaintenanceReport:
    """Block application roles (connection limit 0) and end their sessions; idempotent.

    A server that is down (the Complete Database Failure) is not started for this: the window is recorded, and
    db-restore blocks the roles on the restored server before anyone else can connect (enable_on)."""
    try:
        conn = connect(settings, env, "maintenance enable")
    except ServerDownError as down:
        return _record_while_down(settings, env, reason, down)
    with conn:
        return enable_on(conn, settings, env, reason)


def _record_while_down(settings: Settings, env: Environment, reason: str | None,
                       down: ServerDownError) -> MaintenanceReport:
    current = state(settings, env)
    recorded = current or MaintenanceState(env=env.name, reason=reason or DEFAULT_REASON, who=who(),
                                           since=datetime.now(UTC), roles={})
    save(state_path(settings, env), recorded)
    return MaintenanceReport(
        env=env.name, on=True, reason=recorded.reason, who=recorded.who, since=recorded.since,
        roles=recorded.roles, server_reached=False,
        notes=[f"the server is down ({down.message}): maintenance mode is recorded and no role was changed; "
               f"db-restore blocks the application roles on the restored server before it opens, or run "
               f"make db-maintenance-mode enable env={env.name} again once it runs"])


def enable_on(conn: psycopg.Connection[Any], settings: Settings, env: Environment,
              reason: str | None) -> MaintenanceReport:
    """enable() on a connection the caller holds (a restored server, before anyone else can connect)."""
    path = state_path(settings, env)
    current = state(settings, env)
    found = application_roles(conn, env)
    saved = dict(current.roles) if current else {}
    notes = []
    own = tool_roles(env)
    # A window opened by an older cuisine-db may hold the tool's own roles: they get their limits back now.
    released = {role: limit for role, limit in saved.items() if role in own}
    for role in released:
        del saved[role]
        notes.append(f"role {role} is {own[role]}: given back its connection limit, it stays connected")
    for role, limit in found.items():
        # A role already blocked by this maintenance window keeps its recorded previous limit.
        if role not in saved:
            saved[role] = limit
            if current:
                notes.append(f"role {role} appeared since maintenance began; blocked too")
    recorded = MaintenanceState(
        env=env.name,
        reason=current.reason if current else (reason or DEFAULT_REASON),
        who=current.who if current else who(),
        since=current.since if current else datetime.now(UTC),
        roles=saved,
    )
    if current and reason and reason != current.reason:
        notes.append(f"maintenance mode was already on (reason kept: {current.reason!r})")
    # The previous limits reach the disk before any role changes.
    save(path, recorded)
    existing = {row[0] for row in conn.execute(queries.load("maintenance/role_limits"),
                                               {"names": list(saved)}).fetchall()}
    try:
        _set_limits(conn, {**{role: 0 for role in saved if role in existing}, **released})
    except BaseException:
        if current is None:
            path.unlink(missing_ok=True)
        raise
    ended: dict[str, int] = {}
    for row in conn.execute(queries.load("maintenance/terminate_role_sessions"), {"roles": list(saved)}).fetchall():
        ended[row[1]] = ended.get(row[1], 0) + 1
    limits_now = dict(conn.execute(queries.load("maintenance/role_limits"), {"names": list(saved)}).fetchall())
    present = _login_roles(conn)
    return MaintenanceReport(env=env.name, on=True, reason=recorded.reason, who=recorded.who, since=recorded.since,
                             roles=saved, limits_now=limits_now, terminated=sum(ended.values()), ended=ended,
                             left_connected={role: why for role, why in own.items() if role in present},
                             notes=notes)


def disable(settings: Settings, env: Environment) -> MaintenanceReport:
    """Give each blocked role back exactly its previous connection limit, then forget the state."""
    path = state_path(settings, env)
    current = state(settings, env)
    if current is None:
        return MaintenanceReport(env=env.name, on=False, notes=["maintenance mode was not on; nothing changed"])
    # Maintenance mode only sets connection limits. A physical restore still laid down is opened by its own step
    # (db-apply-logs, `restore open`, or db-restore open=1), never as a side effect of giving the limits back.
    _refuse_while_laid_down(settings, env)
    with connect(settings, env, "maintenance disable") as conn:
        existing = {row[0] for row in conn.execute(queries.load("maintenance/role_limits"),
                                                   {"names": list(current.roles)}).fetchall()}
        _set_limits(conn, {role: limit for role, limit in current.roles.items() if role in existing})
        limits_now = dict(conn.execute(queries.load("maintenance/role_limits"),
                                       {"names": list(current.roles)}).fetchall())
    notes = [f"role {role} no longer exists; nothing to restore" for role in current.roles if role not in existing]
    path.unlink(missing_ok=True)
    return MaintenanceReport(env=env.name, on=False, reason=current.reason, who=current.who, since=current.since,
                             roles=current.roles, limits_now=limits_now, notes=notes)


def enable_journaled(settings: Settings, env: Environment, reason: str | None) -> MaintenanceReport:
    """make db-maintenance-mode enable: enable(), journaled as `maintenance enable` with the roles blocked and the
    sessions ended. (The upgrade calls enable() itself, inside its own journaled steps.)"""
    with journaled(settings, env, "maintenance enable", {"reason": reason}) as entry:
        report = enable(settings, env, reason)
        entry.details.update(roles=report.roles, terminated=report.terminated, ended=report.ended,
                             left_connected=sorted(report.left_connected), server_reached=report.server_reached)
    return report


def disable_journaled(settings: Settings, env: Environment) -> MaintenanceReport:
    """make db-maintenance-mode disable: disable(), journaled as `maintenance disable` with the limits given back."""
    with journaled(settings, env, "maintenance disable", {}) as entry:
        report = disable(settings, env)
        entry.details.update(restored=report.roles)
    return report


def _refuse_while_laid_down(settings: Settings, env: Environment) -> None:
    """Applications stay out while a restore waits laid down: the server is not open yet."""
    from cuisine_db.backup.restore_state import refuse_while_pending

    refuse_while_pending(settings, env, stays=": maintenance mode stays on",
                         then=f"; then make maintenance-mode disable env={env.name}")


def status(settings: Settings, env: Environment) -> MaintenanceReport:
    """Whether maintenance mode is on, and whether the server agrees (limits at 0, no application sessions)."""
    current = state(settings, env)
    with connect(settings, env, "maintenance status") as conn:
        roles = dict(current.roles) if current else application_roles(conn, env)
        limits_now = dict(conn.execute(queries.load("maintenance/role_limits"), {"names": list(roles)}).fetchall())
        sessions = _sessions(conn, list(roles))
    notes = []
    if current:
        loose = [role for role, limit in limits_now.items() if limit != 0]
        if loose:
            notes.append(f"role(s) {', '.join(loose)} are not blocked on the server: run maintenance enable again")
        return MaintenanceReport(env=env.name, on=True, reason=current.reason, who=current.who,
                                 since=current.since, roles=current.roles, limits_now=limits_now,
                                 sessions=sessions, notes=notes)
    return MaintenanceReport(env=env.name, on=False, roles=roles, limits_now=limits_now, sessions=sessions)


def require(settings: Settings, env: Environment, action: str) -> MaintenanceState:
    """The maintenance state, or a refusal: protected environments restore only in maintenance mode."""
    current = state(settings, env)
    if current is None:
        raise RefusedError(f"{action} on protected environment {env.name!r} needs maintenance mode",
                           hint="make db-maintenance-mode enable env=" + env.name + " first (applications are "
                                "disconnected), and disable it afterwards")
    return current

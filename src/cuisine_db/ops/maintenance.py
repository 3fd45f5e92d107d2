"""Maintenance mode: application roles cannot connect, their sessions are ended, and on disable each role gets
back exactly the connection limit it had.

The previous limits are written to the environment's state folder *before* any role is changed, so a crash
between enable and disable loses nothing: disable (or enable again) finishes from that file. Superusers ignore
connection limits, so they are never application roles; neither is the role this tool connects as.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.postgres.connect import connect

STATE_FILE = "maintenance.json"
DEFAULT_REASON = "maintenance (no reason given)"


@dataclass(frozen=True, slots=True)
class MaintenanceState:
    """What enable recorded: why, who, since when, and each blocked role's previous connection limit."""

    env: str
    reason: str
    who: str
    since: datetime
    roles: dict[str, int]


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
    notes: list[str] = field(default_factory=list)


def who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def state_path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / STATE_FILE


def state(settings: Settings, env: Environment) -> MaintenanceState | None:
    """The recorded maintenance state, or None when maintenance mode is off."""
    path = state_path(settings, env)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return MaintenanceState(env=body["env"], reason=body["reason"], who=body["who"],
                                since=datetime.fromisoformat(body["since"]),
                                roles={str(k): int(v) for k, v in body["roles"].items()})
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise FailedError(f"{path} is damaged; it holds the roles' previous connection limits",
                          hint="repair it by hand (JSON: env, reason, who, since, roles) before enabling or "
                               "disabling maintenance mode") from None


def _save(path: Path, current: MaintenanceState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = asdict(current)
    body["since"] = current.since.isoformat()
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(body, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def application_roles(conn: psycopg.Connection[Any], env: Environment) -> dict[str, int]:
    """The roles maintenance mode blocks, with their connection limits now."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        roles = {row["name"]: row for row in cursor.execute(queries.load("maintenance/login_roles"))}
    configured = env.maintenance.application_roles
    if configured is None:
        exempt = set(env.maintenance.exempt_roles)
        return {name: row["connlimit"] for name, row in roles.items()
                if not (row["superuser"] or row["replication"] or row["is_current"] or name in exempt)}
    chosen = {}
    for name in configured:
        row = roles.get(name)
        if row is None:
            raise UsageError(f"environments.{env.name}.maintenance.application_roles names {name!r}, "
                             "which is not a login role on the server")
        if row["superuser"] or row["is_current"]:
            raise UsageError(f"maintenance mode cannot block {name!r}: it is "
                             + ("a superuser (connection limits do not apply)" if row["superuser"]
                                else "the role cuisine-db connects as"))
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
    """Block application roles (connection limit 0) and end their sessions; idempotent."""
    with connect(settings, env, "maintenance enable") as conn:
        return enable_on(conn, settings, env, reason)


def enable_on(conn: psycopg.Connection[Any], settings: Settings, env: Environment,
              reason: str | None) -> MaintenanceReport:
    """enable() on a connection the caller holds (a restored server, before anyone else can connect)."""
    path = state_path(settings, env)
    current = state(settings, env)
    found = application_roles(conn, env)
    saved = dict(current.roles) if current else {}
    notes = []
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
    _save(path, recorded)
    existing = {row[0] for row in conn.execute(queries.load("maintenance/role_limits"),
                                               {"names": list(saved)}).fetchall()}
    try:
        _set_limits(conn, {role: 0 for role in saved if role in existing})
    except BaseException:
        if current is None:
            path.unlink(missing_ok=True)
        raise
    terminated = conn.execute(queries.load("maintenance/terminate_role_sessions"),
                              {"roles": list(saved)}).fetchall()
    limits_now = dict(conn.execute(queries.load("maintenance/role_limits"), {"names": list(saved)}).fetchall())
    return MaintenanceReport(env=env.name, on=True, reason=recorded.reason, who=recorded.who, since=recorded.since,
                             roles=saved, limits_now=limits_now, terminated=len(terminated), notes=notes)


def disable(settings: Settings, env: Environment) -> MaintenanceReport:
    """Give each blocked role back exactly its previous connection limit, then forget the state."""
    path = state_path(settings, env)
    current = state(settings, env)
    if current is None:
        return MaintenanceReport(env=env.name, on=False, notes=["maintenance mode was not on; nothing changed"])
    # A physical restore still laid down (no db-apply-logs) opens first, with exactly the backup's data.
    from cuisine_db.backup.physical_restore import open_pending

    opened = open_pending(settings, env)
    with connect(settings, env, "maintenance disable") as conn:
        existing = {row[0] for row in conn.execute(queries.load("maintenance/role_limits"),
                                                   {"names": list(current.roles)}).fetchall()}
        _set_limits(conn, {role: limit for role, limit in current.roles.items() if role in existing})
        limits_now = dict(conn.execute(queries.load("maintenance/role_limits"),
                                       {"names": list(current.roles)}).fetchall())
    notes = [f"role {role} no longer exists; nothing to restore" for role in current.roles if role not in existing]
    if opened is not None:
        notes.insert(0, f"opened the restored {opened.backup} at the end of the backup (timeline {opened.timeline})")
    path.unlink(missing_ok=True)
    return MaintenanceReport(env=env.name, on=False, reason=current.reason, who=current.who, since=current.since,
                             roles=current.roles, limits_now=limits_now, notes=notes)


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
    from cuisine_db.errors import RefusedError

    current = state(settings, env)
    if current is None:
        raise RefusedError(f"{action} on protected environment {env.name!r} needs maintenance mode",
                           hint="make db-maintenance-mode enable env=" + env.name + " first (applications are "
                                "disconnected), and disable it afterwards")
    return current

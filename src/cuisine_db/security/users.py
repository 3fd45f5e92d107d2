"""Database users: create, change a password, drop (after reporting what the role owns)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError, UnavailableError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import AskWord
from cuisine_db.postgres import purposes
from cuisine_db.security import defaults, typed_input
from cuisine_db.security.passwords import Secret, check_strength, verifier

DEFAULT_CONNECTION_LIMIT = defaults.CONNECTION_LIMIT


@dataclass(frozen=True, slots=True)
class Role:
    """A role as pg_roles shows it."""

    name: str
    superuser: bool
    login: bool
    connection_limit: int
    valid_until: datetime | None
    bootstrap: bool
    is_current: bool


@dataclass(frozen=True, slots=True)
class UserChange:
    """What create-user or update-password did (never the password)."""

    env: str
    username: str
    action: str
    connection_limit: int
    valid_until: date | None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Dependency:
    """One thing a role owns or holds privileges on (object is None when it lives in another database)."""

    database: str
    kind: str
    object: str | None
    here: bool


@dataclass(frozen=True, slots=True)
class Membership:
    direction: str
    role: str


@dataclass(frozen=True, slots=True)
class DropPlan:
    """What dropping a role would touch: shown before the operator confirms."""

    env: str
    username: str
    dependencies: list[Dependency]
    memberships: list[Membership]
    sessions: int
    reassign_to: str | None

    @property
    def owned_here(self) -> list[Dependency]:
        return [d for d in self.dependencies if d.kind == "owner" and d.here]

    @property
    def elsewhere(self) -> list[Dependency]:
        return [d for d in self.dependencies if not d.here]


@contextmanager
def _translated(env: Environment, action: str) -> Iterator[None]:
    """The server's refusals, as errors that say what to do."""
    try:
        yield
    except pgerrors.InsufficientPrivilege as exc:
        raise UnavailableError(
            f"the server refused to {action} on {env.name!r}: {exc.diag.message_primary}",
            hint="the environment's connection needs CREATEROLE (or superuser) and ownership of the objects",
        ) from None
    except pgerrors.DuplicateObject as exc:
        raise UsageError(f"cannot {action}: {exc.diag.message_primary}") from None
    except pgerrors.DependentObjectsStillExist as exc:
        raise RefusedError(f"cannot {action}: {exc.diag.message_primary}; {exc.diag.message_detail or ''}".strip(),
                           hint="revoke or reassign those first (see the report above)") from None


def find_role(conn: psycopg.Connection[Any], name: str) -> Role | None:
    return queries.one_or_none(conn, Role, queries.load("security/role"), {"name": name})


def existing_role(conn: psycopg.Connection[Any], name: str, env: Environment) -> Role:
    """The role, or a usage error that says how to create it."""
    role = find_role(conn, name)
    if role is None:
        raise UsageError(f"role {name!r} does not exist on {env.name!r}",
                         hint=f"create it with: make db-create-user env={env.name} username={name}")
    return role


def _future(day: date | None) -> date | None:
    if day is not None and day <= datetime.now(UTC).date():
        raise UsageError(f"valid_until {day.isoformat()} is not in the future")
    return day


def create_user(settings: Settings, env: Environment, username: str, password: Secret, *,
                connection_limit: int = DEFAULT_CONNECTION_LIMIT, valid_until: date | None = None) -> UserChange:
    """Create a login role whose password the server receives only as a SCRAM-SHA-256 verifier."""
    name = typed_input.role_name(username)
    _future(valid_until)
    if not 1 <= connection_limit <= 10_000:
        raise UsageError(f"connection limit {connection_limit} is out of range (1 to 10000)")
    check_strength(password, name, context=(env.name, env.database, "cuisine"))
    with connect(settings, env, "db-create-user") as conn:
        if find_role(conn, name) is not None:
            raise UsageError(f"role {name!r} already exists on {env.name!r}",
                             hint=f"change its password with: make db-update-password env={env.name} username={name}")
        secret = verifier(conn, password, name)
        identifier = sql.Identifier(name)
        with _translated(env, f"create role {name!r}"), conn.transaction():
            conn.execute(queries.load("security/create_login_role").format(
                name=identifier, verifier=sql.Literal(secret), limit=sql.Literal(connection_limit)))
            if valid_until is not None:
                conn.execute(queries.load("security/set_valid_until").format(
                    name=identifier, until=sql.Literal(valid_until.isoformat())))
            conn.execute(queries.load("security/grant_connect").format(
                name=identifier, database=sql.Identifier(conn.info.dbname)))
    return UserChange(env.name, name, "created", connection_limit, valid_until,
                      [f"may connect to database {env.database}; grant table privileges with db-grant-permission"])


def _tool_roles(settings: Settings, env: Environment) -> dict[str, str]:
    """Roles whose passwords the tool itself keeps (their pgpass or references must change with them)."""
    found = {purposes.role_name(env, purpose): purpose for purpose in purposes.PURPOSES
             if purposes.role_for(settings, env, purpose) is not None}
    return found


def update_password(settings: Settings, env: Environment, username: str, password: Secret, *,
                    valid_until: date | None = None) -> UserChange:
    """Replace a role's password (sent as a verifier); refuse the roles the tool connects as."""
    name = typed_input.role_name(username)
    _future(valid_until)
    check_strength(password, name, context=(env.name, env.database, "cuisine"))
    tool_roles = _tool_roles(settings, env)
    with connect(settings, env, "db-update-password") as conn:
        role = existing_role(conn, name, env)
        if role.is_current or name in tool_roles:
            purpose = tool_roles.get(name, "admin")
            raise RefusedError(
                f"{name!r} is the role cuisine-db connects as on {env.name!r} ({purpose}); a new password here "
                "would lock the tool out",
                hint=f"rotate it with: cuisine-db security setup-roles --env {env.name} --rotate"
                if purpose != "admin" else "change it together with the password reference in cuisine-db.toml",
            )
        secret = verifier(conn, password, name)
        identifier = sql.Identifier(name)
        with _translated(env, f"change the password of {name!r}"), conn.transaction():
            conn.execute(queries.load("security/set_password").format(name=identifier, verifier=sql.Literal(secret)))
            if valid_until is not None:
                conn.execute(queries.load("security/set_valid_until").format(
                    name=identifier, until=sql.Literal(valid_until.isoformat())))
    notes = [] if role.login else [f"{name} cannot log in (NOLOGIN): the password matters only if that changes"]
    return UserChange(env.name, name, "password updated", role.connection_limit, valid_until, notes)


def plan_drop(settings: Settings, env: Environment, username: str, reassign_to: str | None = None) -> DropPlan:
    """What the role owns, where it holds privileges, whom it belongs to, and who is connected as it."""
    name = typed_input.role_name(username)
    target = typed_input.role_name(reassign_to, "reassign_to") if reassign_to else None
    with connect(settings, env, "db-drop-user") as conn:
        role = existing_role(conn, name, env)
        if role.is_current or role.bootstrap:
            what = "the role cuisine-db connects as" if role.is_current else "the bootstrap superuser"
            raise RefusedError(f"{name!r} is {what} on {env.name!r}; dropping it would lock the tool out")
        if target is not None:
            if target == name:
                raise UsageError("reassign_to must name another role")
            existing_role(conn, target, env)
        dependencies = _dependencies(conn, name)
        memberships = queries.rows(conn, Membership, queries.load("security/role_memberships"), {"name": name})
        row = conn.execute(queries.load("security/role_sessions"), {"name": name}).fetchone()
    return DropPlan(env.name, name, dependencies, memberships, int(row[0]) if row else 0, target)


def _dependencies(conn: psycopg.Connection[Any], name: str) -> list[Dependency]:
    return queries.rows(conn, Dependency, queries.load("security/role_dependencies"), {"name": name})


def _refuse_unsafe(plan: DropPlan, env: Environment) -> None:
    if plan.elsewhere:
        places = sorted({d.database for d in plan.elsewhere})
        raise RefusedError(
            f"{plan.username!r} owns objects or holds privileges in other databases too: {', '.join(places)}",
            hint="reassign or revoke them there first (REASSIGN OWNED / DROP OWNED in each database)",
        )
    if plan.owned_here and plan.reassign_to is None:
        raise RefusedError(
            f"{plan.username!r} owns {len(plan.owned_here)} object(s); dropping them with the role would lose data",
            hint=f"give them to another role: make db-drop-user env={env.name} username={plan.username} "
                 "reassign_to=ROLE",
        )


def drop_user(settings: Settings, env: Environment, plan: DropPlan, *, yes: bool = False,
              ask: AskWord | None = None) -> None:
    """Drop the role planned: its objects here go to reassign_to first; anything elsewhere refuses. It asks on every
    environment first: `yes`, or the role's name typed to `ask` (the environment's name on a protected one)."""
    confirmation.require_always(env, f"Dropping role {plan.username}", plan.username, yes=yes, ask=ask)
    _refuse_unsafe(plan, env)
    identifier = sql.Identifier(plan.username)
    with connect(settings, env, "db-drop-user") as conn, \
            _translated(env, f"drop role {plan.username!r}"), conn.transaction():
        # Checked again inside the transaction: DROP OWNED must never drop an object created since the report.
        _refuse_unsafe(DropPlan(plan.env, plan.username, _dependencies(conn, plan.username), [], 0,
                                plan.reassign_to), env)
        if plan.reassign_to is not None:
            conn.execute(queries.load("security/reassign_owned").format(
                name=identifier, target=sql.Identifier(plan.reassign_to)))
        conn.execute(queries.load("security/drop_owned").format(name=identifier))
        conn.execute(queries.load("security/drop_role").format(name=identifier))

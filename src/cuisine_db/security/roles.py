"""`security setup-roles`: the least-privileged roles the tool itself connects as (postgres/purposes.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError, UnavailableError
from cuisine_db.postgres import connection_params, pgpass, purposes
from cuisine_db.security.passwords import Secret, generate, verifier
from cuisine_db.security.users import find_role


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """What a purpose needs: replication or not, predefined roles to join, a connection limit."""

    replication: bool
    memberships: tuple[str, ...]
    connection_limit: int
    reason: str


SPECS = {
    "backup": RoleSpec(True, ("pg_read_all_data",), 10,
                       "pg_basebackup (replication) and pg_dump (reads every table, writes none)"),
    "monitoring": RoleSpec(False, ("pg_monitor",), 5,
                           "sizes, statistics, settings, migration status, permissions, security checks"),
    "operator": RoleSpec(False, ("pg_signal_backend", "pg_monitor"), 5,
                         "sees every session and may cancel or end those of non-superusers"),
    # No predefined role at all: not pg_signal_backend, not the server-file roles; table privileges only.
    "explain": RoleSpec(False, (), 3,
                        "runs the statement db-explain is given, on the application's tables only, always rolled back"),
}


@dataclass(frozen=True, slots=True)
class PurposeRole:
    """One purpose role as setup-roles left it."""

    purpose: str
    role: str
    action: str
    memberships: list[str]
    grants: list[str]
    password: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RolesSetup:
    env: str
    roles: list[PurposeRole]
    config_snippet: str | None


def _remote_password(settings: Settings, env: Environment, purpose: str, role: str) -> tuple[Secret | None, str]:
    """The password a remote purpose role should get, from its reference, and where it comes from."""
    ref = purposes.configured(env, purpose)
    if ref is not None and ref.password_env:
        value = settings.secrets.get(ref.password_env)
        return (Secret(value) if value else None), f"${ref.password_env}"
    params = connection_params(settings, env, purpose=purpose)
    passfile = params.get("passfile")
    if passfile:
        value = pgpass.lookup(Path(passfile), str(params.get("host", "*")), str(params.get("port", "5432")),
                              str(params.get("dbname", "*")), role)
        return (Secret(value) if value else None), f"passfile {passfile}"
    return None, "no reference"


def _ensure(conn: psycopg.Connection[Any], settings: Settings, env: Environment, purpose: str,
            rotate: bool) -> PurposeRole:
    spec = SPECS[purpose]
    name = purposes.role_name(env, purpose)
    identifier = sql.Identifier(name)
    existing = find_role(conn, name)
    if existing is not None and (existing.is_current or existing.bootstrap):
        raise RefusedError(f"roles.{purpose} names {name!r}, the role cuisine-db administers {env.name!r} with",
                           hint="give each purpose a role of its own in cuisine-db.toml")
    attributes = {"name": identifier, "limit": sql.Literal(spec.connection_limit),
                  "replication": sql.SQL("REPLICATION" if spec.replication else "NOREPLICATION")}
    notes: list[str] = []
    local_pgpass = settings.env_dir(env) / "pgpass"
    with conn.transaction():
        conn.execute(queries.load("security/alter_purpose_role" if existing else "security/create_purpose_role")
                     .format(**attributes))
        for group in spec.memberships:
            conn.execute(queries.load("security/grant_role").format(group=sql.Identifier(group), name=identifier))
        conn.execute(queries.load("security/grant_connect").format(name=identifier,
                                                                   database=sql.Identifier(conn.info.dbname)))
        grants = [f"CONNECT on database {conn.info.dbname}"]
        if purpose == "monitoring":
            conn.execute(queries.load("security/grant_hba_rules_view").format(name=identifier))
            conn.execute(queries.load("security/grant_hba_rules_function").format(name=identifier))
            grants.append("SELECT on pg_hba_file_rules")
            table = conn.execute(queries.load("security/migrations_table")).fetchone()
            if table is not None:
                conn.execute(queries.load("security/grant_select").format(
                    name=identifier, table=sql.Identifier(table[0], table[1])))
                grants.append("SELECT on schema_migrations")
            else:
                notes.append("schema_migrations does not exist yet: run setup-roles again after the first db-migrate")
        if purpose == "explain":
            grants += _grant_application_tables(conn, identifier)
        if env.is_local:
            known = any(entry.user == name for entry in pgpass.read(local_pgpass))
            if existing is None or rotate or not known:
                password: Secret | None = generate()
                where = f"generated, in {local_pgpass}"
            else:
                password, where = None, f"kept, in {local_pgpass}"
        else:
            password, where = _remote_password(settings, env, purpose, name)
            if password is None:
                notes.append(f"no password set ({where} gives none): set one with "
                             f"make db-update-password env={env.name} username={name}, or configure roles.{purpose}")
        if password is not None:
            conn.execute(queries.load("security/set_password").format(
                name=identifier, verifier=sql.Literal(verifier(conn, password, name))))
            if env.is_local:
                # Written before the commit: if it fails, the role keeps its old password and still works.
                pgpass.put(local_pgpass, name, password.reveal())
    action = "created" if existing is None else ("rotated" if rotate and password is not None else "updated")
    return PurposeRole(purpose, name, action, list(spec.memberships), grants, where, notes)


def _grant_application_tables(conn: psycopg.Connection[Any], role: sql.Identifier) -> list[str]:
    """Table and sequence privileges in the application's schemas, now and for tables the admin creates later."""
    done = []
    creator = sql.Identifier(conn.info.user)
    for (schema_name,) in conn.execute(queries.load("security/application_schemas")).fetchall():
        schema = sql.Identifier(schema_name)
        conn.execute(queries.load("security/grant_schema_usage").format(schema=schema, role=role))
        conn.execute(queries.load("security/grant_explain_tables").format(schema=schema, role=role))
        conn.execute(queries.load("security/grant_all_sequences").format(schema=schema, role=role))
        conn.execute(queries.load("security/grant_default_explain_tables").format(
            creator=creator, schema=schema, role=role))
        conn.execute(queries.load("security/grant_default_sequences").format(creator=creator, schema=schema, role=role))
        done.append(f"SELECT, INSERT, UPDATE, DELETE on the tables of schema {schema_name} (and its future ones)")
    return done


def _snippet(env: Environment, roles: list[PurposeRole]) -> str | None:
    """The cuisine-db.toml lines a remote environment needs so that commands use these roles."""
    missing = [role for role in roles if purposes.configured(env, role.purpose) is None]
    if env.is_local or not missing:
        return None
    lines = [f"[environments.{env.name}.roles]"]
    lines += [f'{role.purpose} = {{ user = "{role.role}", password_env = "CUISINE_{env.name.upper().replace("-", "_")}_'
              f'{role.purpose.upper()}_PASSWORD" }}' for role in missing]
    return "\n".join(lines)


def setup_roles(settings: Settings, env: Environment, *, rotate: bool = False,
                only: tuple[str, ...] = purposes.PURPOSES) -> RolesSetup:
    """Create or repair the tool's purpose roles (backup, monitoring, operator, explain), each in a transaction."""
    done = []
    with connect(settings, env, "security setup-roles") as conn:
        for purpose in only:
            try:
                done.append(_ensure(conn, settings, env, purpose, rotate))
            except pgerrors.InsufficientPrivilege as exc:
                raise UnavailableError(
                    f"the server refused to set up the {purpose} role on {env.name!r}: {exc.diag.message_primary}",
                    hint="setup-roles needs superuser (or CREATEROLE with ADMIN on the predefined roles)",
                ) from None
    return RolesSetup(env.name, done, _snippet(env, done))

"""Table privileges: grant and revoke (all or nothing, existing tables only), and who can do what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UnavailableError, UsageError
from cuisine_db.security import typed_input
from cuisine_db.security.users import existing_role

# PostgreSQL's own schemas: their catalogs hold password hashes and sampled values; no grant there is routine.
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
_SYSTEM_PREFIXES = ("pg_toast", "pg_temp")

# Privileges that write rows: a serial column's sequence must be usable for INSERT to work.
_NEEDS_SEQUENCES = {"INSERT", "UPDATE", typed_input.ALL}


@dataclass(frozen=True, slots=True)
class Permission:
    """One role's privileges on one table, and where they come from."""

    role: str
    schema: str
    table_name: str
    via: str
    privileges: str


@dataclass(frozen=True, slots=True)
class DefaultPrivilege:
    """What a creator's future objects in a schema will grant."""

    creator: str
    schema: str
    kind: str
    grantee: str
    privileges: str


@dataclass(frozen=True, slots=True)
class PermissionReport:
    env: str
    username: str | None
    permissions: list[Permission]
    defaults: list[DefaultPrivilege]


@dataclass(frozen=True, slots=True)
class GrantChange:
    """What db-grant-permission or db-revoke-permission changed."""

    env: str
    action: str
    username: str
    privileges: list[str]
    schema: str
    tables: list[str]
    all_tables: bool
    default_privileges_for: list[str] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)
    remaining: list[Permission] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Target:
    schemas: list[str]
    tables: list[tuple[str, str]]


def _resolve(conn: psycopg.Connection[Any], schema: str, wanted: list[tuple[str | None, str]] | None) -> _Target:
    """Check that every schema and table exists before anything changes; list what is missing."""
    schemas = [schema, *sorted({s for s, _ in wanted or [] if s is not None and s != schema})]
    existing: dict[str, set[str]] = {}
    for name in schemas:
        if conn.execute(queries.load("security/schema_exists"), {"schema": name}).fetchone() is None:
            raise UsageError(f"schema {name!r} does not exist", hint="list schemas with: make db-psql, then \\dn")
        rows = conn.execute(queries.load("security/relations"), {"schema": name}).fetchall()
        existing[name] = {row[0] for row in rows}
    if wanted is None:
        return _Target(schemas, [(schema, table) for table in sorted(existing[schema])])
    tables = [(s or schema, table) for s, table in wanted]
    missing = [f"{s}.{t}" if s != "public" else t for s, t in tables if t not in existing[s]]
    if missing:
        known = sorted(existing[schema])
        more = " ..." if len(known) > 12 else ""
        raise UsageError(f"no such table: {', '.join(missing)}",
                         hint=f"tables in {schema}: {', '.join(known[:12]) or 'none'}{more}")
    return _Target(schemas, tables)


def _refuse_system_schemas(schemas: list[str]) -> None:
    """Before connecting: a system schema, however it is cased, is never a grant target (exit 2)."""
    for schema in schemas:
        folded = schema.lower()
        if folded in _SYSTEM_SCHEMAS or folded.startswith(_SYSTEM_PREFIXES):
            raise UsageError(f"schema {schema!r} is PostgreSQL's own (system catalogs): db-grant-permission grants "
                             "on the application's tables only",
                             hint="roles that need server statistics get pg_monitor or pg_read_all_stats; "
                                  "never grant on catalogs such as pg_authid")


def _refuse_catalog_names(conn: psycopg.Connection[Any], tables: list[tuple[str | None, str]] | None) -> None:
    """A table named like a catalog (pg_authid, PG_SHADOW) is refused too: the operator meant the catalog."""
    if not tables:
        return
    wanted = sorted({table.lower() for _, table in tables})
    found = [row[0] for row in conn.execute(queries.load("security/catalog_relations"), {"names": wanted})]
    if found:
        raise UsageError(f"{', '.join(found)} is a PostgreSQL system catalog: db-grant-permission grants on the "
                         "application's tables only",
                         hint="roles that need server statistics get pg_monitor or pg_read_all_stats")


def _privileges_sql(privileges: list[str]) -> sql.Composable:
    # Keywords from typed_input.privileges' fixed list, never from input.
    return sql.SQL(", ").join(sql.SQL("ALL PRIVILEGES" if p == typed_input.ALL else p) for p in privileges)


def _translated(exc: pgerrors.InsufficientPrivilege, env: Environment) -> UnavailableError:
    return UnavailableError(f"the server refused the change on {env.name!r}: {exc.diag.message_primary}",
                            hint="grants need the tables' owner (the role migrations run as) or superuser")


def change(settings: Settings, env: Environment, *, grant: bool, username: str, permission: str,
           tables: str, schema: str = "public") -> GrantChange:
    """Grant or revoke table privileges in one transaction; tables=ALL also covers future tables."""
    role = typed_input.role_name(username)
    schema_name = typed_input.object_name(schema, "schema")
    wanted = typed_input.table_list(tables)
    if grant:  # revoking there stays possible: it undoes a grant made by hand
        _refuse_system_schemas([schema_name, *(s for s, _ in wanted or [] if s is not None)])
    verb = "grant" if grant else "revoke"
    with connect(settings, env, f"db-{verb}-permission") as conn:
        privileges = typed_input.privileges(permission, conn.info.server_version)
        if grant:
            _refuse_catalog_names(conn, wanted)
        existing_role(conn, role, env)
        target = _resolve(conn, schema_name, wanted)
        if wanted is not None and not target.tables:
            raise UsageError("no tables to change")
        grantee = sql.Identifier(role)
        privs = _privileges_sql(privileges)
        sequences = []
        creators: list[str] = []
        try:
            with conn.transaction():
                if _NEEDS_SEQUENCES & set(privileges):
                    chosen = None if wanted is None else [t for _, t in target.tables]
                    params = {"schema": schema_name, "tables": chosen}
                    sequences = [(row[0], row[1]) for row in
                                 conn.execute(queries.load("security/serial_sequences"), params).fetchall()]
                if grant:
                    for name in target.schemas:
                        conn.execute(queries.load("security/grant_schema_usage").format(
                            schema=sql.Identifier(name), role=grantee))
                if wanted is None:
                    conn.execute(queries.load(f"security/{verb}_all_tables").format(
                        privileges=privs, schema=sql.Identifier(schema_name), role=grantee))
                    creators = [row[0] for row in
                                conn.execute(queries.load("security/table_creators"), {"schema": schema_name})]
                    for creator in creators:
                        conn.execute(queries.load(f"security/{verb}_default_tables").format(
                            creator=sql.Identifier(creator), schema=sql.Identifier(schema_name),
                            privileges=privs, role=grantee))
                        if _NEEDS_SEQUENCES & set(privileges):
                            conn.execute(queries.load(f"security/{verb}_default_sequences").format(
                                creator=sql.Identifier(creator), schema=sql.Identifier(schema_name), role=grantee))
                elif target.tables:
                    conn.execute(queries.load(f"security/{verb}_tables").format(
                        privileges=privs, role=grantee,
                        tables=sql.SQL(", ").join(sql.Identifier(s, t) for s, t in target.tables)))
                if sequences:
                    conn.execute(queries.load(f"security/{verb}_sequences").format(
                        role=grantee, sequences=sql.SQL(", ").join(sql.Identifier(s, n) for s, n in sequences)))
        except pgerrors.InsufficientPrivilege as exc:
            raise _translated(exc, env) from None
        remaining: list[Permission] = []
        if not grant:
            changed = {(s, t) for s, t in target.tables}
            remaining = [p for p in _permissions(conn, role) if (p.schema, p.table_name) in changed or p.schema == "*"]
    return GrantChange(
        env=env.name, action="granted" if grant else "revoked", username=role, privileges=privileges,
        schema=schema_name, tables=[f"{s}.{t}" for s, t in target.tables], all_tables=wanted is None,
        default_privileges_for=creators, sequences=[f"{s}.{n}" for s, n in sequences], remaining=remaining,
    )


def _permissions(conn: psycopg.Connection[Any], username: str | None) -> list[Permission]:
    return queries.rows(conn, Permission, queries.load("security/permissions"), {"name": username})


def permissions(settings: Settings, env: Environment, username: str | None = None) -> PermissionReport:
    """Who can do what on which table (login roles, or one role), including through role membership."""
    name = typed_input.role_name(username) if username is not None else None
    with connect(settings, env, "db-permissions", purpose="monitoring") as conn:
        if name is not None:
            existing_role(conn, name, env)
        rows = _permissions(conn, name)
        defaults = queries.rows(conn, DefaultPrivilege, queries.load("security/default_privileges"), {"name": name})
    return PermissionReport(env.name, name, rows, defaults)

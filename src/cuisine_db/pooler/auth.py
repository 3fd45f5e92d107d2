"""How PgBouncer authenticates clients without a copy of their passwords: `auth_query` through a lookup function.

PgBouncer logs in as a dedicated role (`cuisine_pgbouncer`: LOGIN, a small connection limit, nothing else)
and calls `cuisine_pooler.lookup(name)`, a SECURITY DEFINER function owned by the (super)user that creates it,
with a fixed `search_path` (so nobody can plant objects it would resolve), executable only by that role. It
returns a login role's SCRAM verifier (never for superusers, replication roles or expired roles): PgBouncer
checks the client's SCRAM proof against it and logs in to the server with the same proof, so the only
password in its files is the auth role's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment, PoolerConfig, Settings
from cuisine_db.errors import RefusedError, UnavailableError, UsageError
from cuisine_db.replicas.role import ServiceRole, ensure_login_role
from cuisine_db.security.passwords import Secret

SCHEMA = "cuisine_pooler"  # named in sql/pooler/auth_query.sql too
AUTH_CONNECTION_LIMIT = 5


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_connections: int
    superuser_reserved: int
    reserved: int
    database: str
    superuser: bool


def limits(conn: psycopg.Connection[Any]) -> ServerLimits:
    row = conn.execute(queries.load("pooler/server_limits")).fetchone()
    if row is None:
        raise UnavailableError("the server returned no row for its connection limits")
    return ServerLimits(*row)


def _password(settings: Settings, env: Environment, pooler: PoolerConfig) -> Secret | None:
    if env.is_local:
        return None  # generated, or the one the local pgpass keeps
    value = settings.secret(pooler.auth_password_env)
    if not value:
        raise UsageError(f"environment {env.name!r} is remote: the pooler's role needs its password by reference",
                         hint="set pooler.auth_password_env in cuisine-db.toml and export that variable")
    return Secret(value)


def ensure(conn: psycopg.Connection[Any], settings: Settings, env: Environment, pooler: PoolerConfig,
           server: ServerLimits) -> ServiceRole:
    """The auth role, the lookup function and the grants between them, in the environment's database."""
    if not server.superuser:
        raise UnavailableError(
            f"the lookup function reads pg_authid, so it must be created by a superuser; {env.name!r}'s "
            "connection is not one",
            hint="run pooler config with a superuser's dsn, or use the managed service's own pooler")
    role = ensure_login_role(conn, settings, env, pooler.auth_user, replication=False,
                             connection_limit=AUTH_CONNECTION_LIMIT, password=_password(settings, env, pooler))
    schema, name = sql.Identifier(SCHEMA), sql.Identifier(pooler.auth_user)
    with conn.transaction():
        owner = conn.execute(queries.load("pooler/schema_owner"), {"schema": SCHEMA}).fetchone()
        if owner is not None and not owner[1]:
            raise RefusedError(f"schema {SCHEMA} exists and belongs to {owner[0]!r}: its owner could change the "
                               "lookup function", hint="drop or rename that schema, then run pooler config again")
        conn.execute(queries.load("pooler/create_schema").format(schema=schema))
        conn.execute(queries.load("pooler/revoke_schema").format(schema=schema))
        conn.execute(queries.load("pooler/create_lookup").format(schema=schema))
        conn.execute(queries.load("pooler/revoke_lookup").format(schema=schema))
        conn.execute(queries.load("pooler/grant_schema").format(schema=schema, role=name))
        conn.execute(queries.load("pooler/grant_lookup").format(schema=schema, role=name))
        conn.execute(queries.load("security/grant_connect").format(name=name,
                                                                   database=sql.Identifier(server.database)))
    return role


def auth_query() -> str:
    """The statement PgBouncer runs to look a user up (sql/pooler/auth_query.sql)."""
    return queries.text("pooler/auth_query")

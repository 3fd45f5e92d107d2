"""Login roles the tool creates for servers rather than people: the replicas' replication role, the pooler's.

Like setup-roles' purpose roles: the attributes are exactly what the job needs, the password is generated
and kept in the local cluster's 0600 pgpass (or, for a remote server, taken from its reference), and the
server only ever receives its SCRAM verifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError, UsageError
from cuisine_db.postgres import pgpass
from cuisine_db.postgres.purposes import REPLICATION_ROLE as REPLICATION_ROLE
from cuisine_db.security.passwords import Secret, generate, verifier
from cuisine_db.security.users import find_role

REPLICATION_CONNECTION_LIMIT = 20


@dataclass(frozen=True, slots=True)
class ServiceRole:
    name: str
    created: bool
    password: Secret


def ensure_login_role(conn: psycopg.Connection[Any], settings: Settings, env: Environment, name: str, *,
                      replication: bool, connection_limit: int, password: Secret | None = None) -> ServiceRole:
    """Create or repair a service role; its password is `password`, else the one kept locally, else a new one.

    Runs in one transaction; the local pgpass line is written before it commits, so a failure leaves the old
    password working."""
    existing = find_role(conn, name)
    if existing is not None and (existing.superuser or existing.bootstrap or existing.is_current):
        raise RefusedError(f"role {name!r} on {env.name!r} is a superuser or the tool's own role; a service role "
                           "must hold nothing but its job", hint="drop or rename that role first")
    local_pgpass = settings.env_dir(env) / "pgpass"
    kept = next((entry.password for entry in pgpass.read(local_pgpass) if entry.user == name), None) \
        if env.is_local else None
    if password is None and kept is not None and existing is not None:
        chosen, new = Secret(kept), False
    elif password is None and not env.is_local:
        raise UsageError(f"no password for role {name!r} of remote environment {env.name!r}",
                         hint="name the variable that holds it in cuisine-db.toml")
    else:
        chosen, new = password or generate(), True
    attributes = {"name": sql.Identifier(name), "limit": sql.Literal(connection_limit),
                  "replication": sql.SQL("REPLICATION" if replication else "NOREPLICATION")}
    with conn.transaction():
        conn.execute(queries.load("security/alter_purpose_role" if existing else "security/create_purpose_role")
                     .format(**attributes))
        if new:
            conn.execute(queries.load("security/set_password").format(
                name=sql.Identifier(name), verifier=sql.Literal(verifier(conn, chosen, name))))
            if env.is_local:
                pgpass.put(local_pgpass, name, chosen.reveal())
    return ServiceRole(name, existing is None, chosen)

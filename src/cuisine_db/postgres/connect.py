"""Connections to an environment's database, opened deliberately and named after the command."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UnavailableError
from cuisine_db.postgres import purposes
from cuisine_db.postgres.cluster import SUPERUSER


def connection_params(settings: Settings, env: Environment, dbname: str | None = None,
                      purpose: str = purposes.ADMIN) -> dict[str, Any]:
    """libpq parameters for an environment and purpose (postgres/purposes.py), without any password."""
    if env.is_local:
        params: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": env.port,
            "user": SUPERUSER,
            "dbname": dbname or env.database,
            "passfile": str(settings.env_dir(env) / "pgpass"),
        }
    else:
        params = dict(psycopg.conninfo.conninfo_to_dict(env.dsn or ""))
        if dbname:
            params["dbname"] = dbname
        if env.passfile is not None:
            params["passfile"] = str(env.passfile)
    role = purposes.role_for(settings, env, purpose)
    if role is not None:
        params["user"] = role.user
        if role.passfile is not None:
            params["passfile"] = str(role.passfile)
    return params


def describe(settings: Settings, env: Environment) -> str:
    """A connection string that is safe to show: never a password."""
    params = connection_params(settings, env)
    params.pop("passfile", None)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def client_environ(settings: Settings, env: Environment, dbname: str | None = None,
                   purpose: str = purposes.ADMIN) -> dict[str, str]:
    """Environment variables that point libpq programs (psql, pg_dump) at the environment."""
    mapping = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE",
               "passfile": "PGPASSFILE", "sslmode": "PGSSLMODE"}
    params = connection_params(settings, env, dbname, purpose)
    environ = {mapping[key]: str(value) for key, value in params.items() if key in mapping}
    password = purposes.password_for(settings, env, purpose)
    if password is not None:
        environ["PGPASSWORD"] = password
    return environ


def connect(
    settings: Settings,
    env: Environment,
    command: str,
    *,
    autocommit: bool = True,
    dbname: str | None = None,
    start: bool = True,
    purpose: str = purposes.ADMIN,
) -> psycopg.Connection[Any]:
    """Open a connection for one command, creating or starting the local cluster when it is not up.

    `purpose` picks the least-privileged role meant for the command (postgres/purposes.py)."""
    if not (env.is_local and start):
        return _open(settings, env, command, autocommit=autocommit, dbname=dbname, purpose=purpose)
    try:
        return _open(settings, env, command, autocommit=autocommit, dbname=dbname, purpose=purpose)
    except UnavailableError:
        # Not created, not running, or its database is missing: ensure_up mends each of these.
        from cuisine_db.postgres.local import ensure_up

        ensure_up(settings, env)
        return _open(settings, env, command, autocommit=autocommit, dbname=dbname, purpose=purpose)


def _open(
    settings: Settings, env: Environment, command: str, *, autocommit: bool, dbname: str | None,
    purpose: str = purposes.ADMIN,
) -> psycopg.Connection[Any]:
    params = connection_params(settings, env, dbname, purpose)
    password = purposes.password_for(settings, env, purpose)
    if password is not None:
        params["password"] = password
    # A dsn may carry its own connect_timeout (kept) or application_name (ours names the command).
    params.setdefault("connect_timeout", 10)
    params["application_name"] = f"cuisine-db {command}"[:63]
    try:
        return psycopg.connect(**params, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no reason given"
        role = purposes.role_for(settings, env, purpose)
        if role is not None and "authentication failed" in first:
            raise UnavailableError(
                f"cannot connect to environment {env.name!r} as its {purpose} role {role.user!r}: {first}",
                hint=f"check roles.{purpose} in cuisine-db.toml, or reset the role's password: "
                     f"cuisine-db security setup-roles --env {env.name} --rotate",
            ) from None
        raise UnavailableError(
            f"cannot connect to environment {env.name!r} ({describe(settings, env)}): {first}",
            hint="is the server running? try: cuisine-db cluster status --env " + env.name
            if env.is_local
            else "check the dsn, the network and the password reference in cuisine-db.toml",
        ) from None


def ensure_database(settings: Settings, env: Environment) -> None:
    """Create the environment's database on its local cluster when it is missing."""
    with _open(settings, env, "ensure-database", autocommit=True, dbname="postgres") as conn:
        exists = conn.execute(queries.load("cluster/database_exists"), {"name": env.database}).fetchone()
        if exists is None:
            # Two processes may race to create it; either one winning is fine.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(queries.load("cluster/create_database").format(name=sql.Identifier(env.database)))
    with _open(settings, env, "ensure-database", autocommit=True, dbname=env.database) as conn:
        conn.execute(queries.load("cluster/enable_pg_stat_statements"))

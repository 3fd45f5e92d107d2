"""Connections to an environment's database, opened deliberately and named after the command."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, ServerDownError, UnavailableError
from cuisine_db.postgres import purposes, route, topology
from cuisine_db.postgres.cluster import SUPERUSER
from cuisine_db.postgres.target import Target
from cuisine_db.waiting import retry


def connection_params(settings: Settings, env: Environment, dbname: str | None = None,
                      purpose: str = purposes.ADMIN, target: Target | None = None) -> dict[str, Any]:
    """libpq parameters for an environment and purpose (postgres/purposes.py), without any password.

    A local environment's primary is wherever postgres/topology.py says (a promoted replica's port);
    `target` (replicas/routing.py) points them at one of the environment's replicas instead."""
    params: dict[str, Any]
    if env.patroni is not None:
        params = _patroni_params(settings, env, dbname, leader=target is None)
    elif env.is_local:
        params = {
            "host": "127.0.0.1",
            "port": topology.primary_node(settings, env).port,
            "user": SUPERUSER,
            "dbname": dbname or env.database,
            "passfile": str(settings.env_dir(env) / "pgpass"),
        }
    else:
        params = dict(psycopg.conninfo.conninfo_to_dict(route.dsn_of(settings, env)))
        if dbname:
            params["dbname"] = dbname
        if env.passfile is not None:
            params["passfile"] = str(env.passfile)
    if target is not None:
        # The primary's address goes entirely: a list of hosts with target_session_attrs=read-write (a Patroni
        # cluster's dsn) or a hostaddr left behind would send the replica's connection back to the primary.
        for key in ("host", "hostaddr", "port", "target_session_attrs"):
            params.pop(key, None)
        params.update(target.params)
    role = purposes.role_for(settings, env, purpose)
    if role is not None:
        params["user"] = role.user
        if role.passfile is not None:
            params["passfile"] = str(role.passfile)
    return params


def _patroni_params(settings: Settings, env: Environment, dbname: str | None, *, leader: bool) -> dict[str, Any]:
    """A Patroni environment's primary is the member Patroni names leader now (read on every call); user, database
    and TLS settings come from its dsn, or, embedded, are the local superuser's."""
    if env.embedded_patroni:
        params: dict[str, Any] = {"user": SUPERUSER, "dbname": dbname or env.database,
                                  "passfile": str(settings.env_dir(env) / "pgpass")}
    else:
        params = dict(psycopg.conninfo.conninfo_to_dict(route.dsn_of(settings, env)))
        for key in ("host", "hostaddr", "port", "target_session_attrs"):
            params.pop(key, None)
        if dbname:
            params["dbname"] = dbname
        if env.passfile is not None:
            params["passfile"] = str(env.passfile)
    if leader:
        from cuisine_db.postgres import patroni

        found = patroni.leader(settings, env)
        params.update(host=found.host, port=found.port)
    return params


def describe(settings: Settings, env: Environment) -> str:
    """A connection string that is safe to show: never a password. A Patroni environment whose leader cannot be
    asked now (an embedded cluster not created yet, no endpoint answering) is described as such, not an error:
    `env list` shows every environment."""
    try:
        params = connection_params(settings, env)
    except CuisineDbError as exc:
        if env.patroni is None:
            raise
        return f"Patroni cluster, leader unknown now: {exc}"
    params.pop("passfile", None)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def client_environ(settings: Settings, env: Environment, dbname: str | None = None,
                   purpose: str = purposes.ADMIN, target: Target | None = None) -> dict[str, str]:
    """Environment variables that point libpq programs (psql, pg_dump) at the environment (or `target`)."""
    mapping = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE",
               "passfile": "PGPASSFILE", "sslmode": "PGSSLMODE", "hostaddr": "PGHOSTADDR",
               "target_session_attrs": "PGTARGETSESSIONATTRS"}
    params = connection_params(settings, env, dbname, purpose, target)
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
    purpose: str = purposes.ADMIN,
    target: Target | None = None,
) -> psycopg.Connection[Any]:
    """Open a connection for one command. It never starts a server: a local cluster that is down is an error here;
    services connect through cluster/on_demand.py, which applies the start policy.

    `purpose` picks the least-privileged role meant for the command (postgres/purposes.py); `target` is one of the
    environment's replicas (replicas/routing.py)."""
    return _open(settings, env, command, autocommit=autocommit, dbname=dbname, purpose=purpose, target=target)


PROMOTING_SECONDS = 60.0


class LeaderStillPromoting(ServerDownError):
    """Patroni names a leader whose PostgreSQL is still in recovery: the seconds after a failover or a switchover
    in which the leader key is taken and the promotion not finished."""


def _open(
    settings: Settings, env: Environment, command: str, *, autocommit: bool, dbname: str | None,
    purpose: str = purposes.ADMIN, target: Target | None = None,
) -> psycopg.Connection[Any]:
    if env.patroni is None or target is not None or purpose != purposes.ADMIN:
        return _open_once(settings, env, command, autocommit=autocommit, dbname=dbname, purpose=purpose,
                          target=target)
    # The tool's own connections to a Patroni leader write (CREATE DATABASE, migrations, restores). Patroni names
    # the new leader as soon as it holds the leader key, while its PostgreSQL may still be finishing the promotion
    # (read-only) for a few seconds: wait for it, rather than fail half-way through the work. The server reports
    # in_hot_standby (14+) at connection start, so this costs no query.
    def writable() -> psycopg.Connection[Any]:
        conn = _open_once(settings, env, command, autocommit=autocommit, dbname=dbname, purpose=purpose)
        if conn.info.parameter_status("in_hot_standby") != "on":
            return conn
        conn.close()
        from cuisine_db.postgres import patroni

        leader = patroni.leader(settings, env)
        if leader.role == "standby_leader":  # a standby cluster's leader is read-only for good
            return _open_once(settings, env, command, autocommit=autocommit, dbname=dbname, purpose=purpose)
        raise LeaderStillPromoting(f"Patroni's leader {leader.name} of {env.name!r} is still in recovery "
                                   f"(read-only) after {PROMOTING_SECONDS:.0f}s",
                                   hint=f"make db-replicas env={env.name} shows the members' states")

    return retry(writable, on=(LeaderStillPromoting,), pause=0.2, growth=1.5, longest=2.0,
                 seconds=PROMOTING_SECONDS)


def _open_once(
    settings: Settings, env: Environment, command: str, *, autocommit: bool, dbname: str | None,
    purpose: str = purposes.ADMIN, target: Target | None = None,
) -> psycopg.Connection[Any]:
    params = connection_params(settings, env, dbname, purpose, target)
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
        user = str(params.get("user") or "the default user")
        if "too many connections for role" in first:
            raise RoleLimitReached(env, user, purpose, first) from None
        if role is not None and "authentication failed" in first:
            raise UnavailableError(
                f"cannot connect to environment {env.name!r} as its {purpose} role {role.user!r}: {first}",
                hint=f"check roles.{purpose} in cuisine-db.toml, or reset the role's password: "
                     f"cuisine-db security setup-roles --env {env.name} --rotate",
            ) from None
        # Nothing answered (or it is not accepting sessions): monitoring calls this critical, not unknown.
        error = ServerDownError if any(sign in str(exc).lower() for sign in _SERVER_DOWN) else UnavailableError
        if target is not None:
            raise error(f"cannot connect to replica {target.name!r} of {env.name!r}: {first}",
                        hint=f"make db-replicas env={env.name} shows each replica's state") from None
        raise error(
            f"cannot connect to environment {env.name!r} as {user} ({_where(params)}): {first}",
            hint=f"make cluster-status env={env.name} says whether it runs; make cluster-up env={env.name} "
                 "starts it" if env.is_local
            else "check the dsn, the network and the password reference in cuisine-db.toml",
        ) from None


def _where(params: dict[str, Any]) -> str:
    shown = {key: str(params[key]) for key in ("host", "hostaddr", "port", "dbname") if params.get(key)}
    return psycopg.conninfo.make_conninfo(**shown)


_SERVER_DOWN = ("connection refused", "timeout expired", "no route to host", "network is unreachable",
                "the database system is", "server closed the connection unexpectedly")


class RoleLimitReached(UnavailableError):
    """The server refused the role at its connection limit; cluster/on_demand.py says whether maintenance mode set
    that limit (connecting reads no service's state)."""

    def __init__(self, env: Environment, user: str, purpose: str, first: str) -> None:
        super().__init__(
            f"{user}: its connection limit is reached — environment {env.name!r} refused this {purpose} connection "
            f"({first})",
            hint=f"make db-connections env={env.name} shows its sessions; ALTER ROLE {user} CONNECTION LIMIT n "
                 "raises the limit (0 means blocked)")
        self.user = user
        self.purpose = purpose


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

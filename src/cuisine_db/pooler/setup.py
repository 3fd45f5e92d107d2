"""`cuisine-db pooler config`: PgBouncer's configuration for an environment, and what it needs on the server.

Writes `pgbouncer.ini` (transaction pooling, pool sizes from pooler/sizing.py, auth_query through
pooler/auth.py) and `userlist.txt`, the auth file holding only the auth role's password, which PgBouncer needs
to run the lookup. Both are 0600 in a 0700 folder; for a local environment they belong to the OS user the
servers run as, who runs PgBouncer too (pooler/process.py). Nothing else in them is a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from cuisine_db import records
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, PoolerConfig, Settings
from cuisine_db.errors import UsageError
from cuisine_db.ops.journal import journaled
from cuisine_db.pooler import auth
from cuisine_db.pooler.sizing import AUTH_POOL, PoolSizes, size_pools
from cuisine_db.postgres import connection_params, osuser
from cuisine_db.replicas.members import members

INI = "pgbouncer.ini"
AUTH_FILE = "userlist.txt"


@dataclass(frozen=True, slots=True)
class PoolerSetup:
    """What pooler config wrote and set up."""

    env: str
    config_file: str
    auth_file: str
    listen: str
    database: str
    pool_mode: str
    sizes: PoolSizes
    auth_user: str
    auth_user_created: bool
    replicas: list[str]
    start: str  # how to start PgBouncer with it


def pooler_of(env: Environment) -> PoolerConfig:
    if env.pooler is None:
        raise UsageError(f"environment {env.name!r} has no pooler configured",
                         hint=f"add [environments.{env.name}.pooler] to cuisine-db.toml (port, applications; see "
                              "its comments), then run this again")
    return env.pooler


def config_dir(settings: Settings, env: Environment) -> Path:
    pooler = pooler_of(env)
    if pooler.config_dir is None:
        return settings.env_dir(env) / "pgbouncer"
    return pooler.config_dir if pooler.config_dir.is_absolute() else settings.root / pooler.config_dir


def server_user(settings: Settings, env: Environment) -> str | None:
    """Who runs PgBouncer: for a local environment, the servers' OS user (None: this user)."""
    from cuisine_db.postgres.local import os_user_of

    return os_user_of(settings, env) if env.is_local else None


def _quote_auth(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _ini_value(value: str) -> str:
    if any(char in value for char in "\n\r;"):
        raise UsageError(f"{value!r} cannot go into pgbouncer.ini")
    return value


def _write(path: Path, text: str, owner: str | None) -> None:
    """Atomically, 0600, owned by the pooler's user."""
    records.atomic_write(path, text, mode=0o600, owner=owner or None)


def render_ini(env: Environment, pooler: PoolerConfig, folder: Path, databases: dict[str, dict[str, str]],
               sizes: PoolSizes, local: bool) -> str:
    """pgbouncer.ini for these databases and sizes."""
    lines = [f"; PgBouncer for environment {env.name}, written by cuisine-db pooler config: write it again rather "
             "than editing it.", *(f"; {line}" for line in sizes.explain()), "", "[databases]"]
    for alias, params in databases.items():
        lines.append(f"{alias} = " + " ".join(f"{key}={_ini_value(value)}" for key, value in params.items()))
    log = folder / "pgbouncer.log" if local else Path("/var/log/postgresql/pgbouncer.log")
    pid = folder / "pgbouncer.pid" if local else Path("/run/postgresql/pgbouncer.pid")
    settings = {
        "listen_addr": pooler.host,
        "listen_port": str(pooler.port),
        "auth_type": "scram-sha-256",
        "auth_file": str(folder / AUTH_FILE),
        "auth_user": pooler.auth_user,
        "auth_query": auth.auth_query(),
        "pool_mode": pooler.pool_mode,
        "max_client_conn": str(sizes.max_client_conn),
        "default_pool_size": str(sizes.default_pool_size),
        "min_pool_size": "0",
        "reserve_pool_size": str(sizes.reserve_pool_size),
        "reserve_pool_timeout": "3",
        "max_db_connections": str(sizes.budget),
        "server_reset_query": "DISCARD ALL",
        "server_check_query": "SELECT 1",
        "ignore_startup_parameters": "extra_float_digits",
        "admin_users": "",
        "stats_users": pooler.auth_user,
        "logfile": str(log),
        "pidfile": str(pid),
    }
    if local:
        settings["unix_socket_dir"] = ""  # TCP on loopback only, like the local clusters
    lines += ["", "[pgbouncer]", *(f"{key} = {_ini_value(value)}" for key, value in settings.items())]
    # The auth role's lookups take one server connection per database at most (pooler/sizing.py).
    lines += ["", "[users]", f"{pooler.auth_user} = max_user_connections={len(databases) * AUTH_POOL}"]
    return "\n".join(lines) + "\n"


def _databases(settings: Settings, env: Environment, database: str) -> dict[str, dict[str, str]]:
    """The environment's database, and one read-only alias per replica (`<database>_<replica>`)."""
    params = connection_params(settings, env)
    where: dict[str, str] = {key: str(params[key]) for key in ("host", "port") if params.get(key)}
    found = {database: {**where, "dbname": database}}
    for member in members(settings, env):
        replica: dict[str, str] = {key: member.target.params[key] for key in ("host", "port")
                                   if key in member.target.params}
        found[f"{database}_{member.name}"] = {**replica, "dbname": database}
    return found


def configure(settings: Settings, env: Environment) -> PoolerSetup:
    """pooler config, journaled with the file written and the pool sizes: `_configure`."""
    with journaled(settings, env, "pooler config", {}) as entry:
        done = _configure(settings, env)
        entry.details.update(config_file=done.config_file, default_pool_size=done.sizes.default_pool_size,
                             max_db_connections=done.sizes.budget, max_client_conn=done.sizes.max_client_conn)
    return done


def _configure(settings: Settings, env: Environment) -> PoolerSetup:
    """Create or repair the auth role and lookup function, size the pools, write pgbouncer.ini and its auth file."""
    pooler = pooler_of(env)
    folder = config_dir(settings, env)
    owner = server_user(settings, env)
    with connect(settings, env, "pooler config") as conn:
        server = auth.limits(conn)
        roles = len(env.maintenance.application_roles or []) or 1
        sizes = size_pools(pooler, max_connections=server.max_connections,
                           superuser_reserved=server.superuser_reserved, reserved=server.reserved, roles=roles)
        role = auth.ensure(conn, settings, env, pooler, server)
    folder.mkdir(parents=True, exist_ok=True)
    osuser.give_to(folder, owner)
    osuser.make_reachable(folder, owner)
    databases = _databases(settings, env, server.database)
    _write(folder / AUTH_FILE, f"{_quote_auth(role.name)} {_quote_auth(role.password.reveal())}\n", owner)
    _write(folder / INI, render_ini(env, pooler, folder, databases, sizes, env.is_local), owner)
    start = (f"cuisine-db pooler start --env {env.name}" if env.is_local
             else f"copy {folder} to the pooler's host, then: pgbouncer -d {folder / INI}")
    return PoolerSetup(env=env.name, config_file=str(folder / INI), auth_file=str(folder / AUTH_FILE),
                       listen=f"{pooler.host}:{pooler.port}", database=server.database, pool_mode=pooler.pool_mode,
                       sizes=sizes, auth_user=role.name, auth_user_created=role.created,
                       replicas=[alias for alias in databases if alias != server.database], start=start)


def application_dsn(env: Environment, database: str, user: str = "APP_USER") -> str:
    """How an application reaches the database through the pooler (its password from its own secret store)."""
    pooler = pooler_of(env)
    return psycopg.conninfo.make_conninfo(host=pooler.host, port=str(pooler.port), dbname=database, user=user)

"""PgBouncer's pools as db-connections shows them: SHOW POOLS on its admin console, and what it means."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cuisine_db import sql
from cuisine_db.config import Environment, Settings
from cuisine_db.findings import Finding
from cuisine_db.postgres import pgpass

CONSOLE_TIMEOUT = 5
WAIT_ERROR_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Pool:
    """One (database, user) pool: clients served and waiting, server connections, the longest wait."""

    database: str
    user: str
    cl_active: int
    cl_waiting: int
    sv_active: int
    sv_idle: int
    sv_used: int
    sv_login: int
    maxwait_seconds: float
    pool_mode: str


@dataclass(frozen=True, slots=True)
class PoolerUsage:
    address: str
    reachable: bool
    problem: str | None = None
    pools: list[Pool] = field(default_factory=list)

    @property
    def waiting(self) -> int:
        return sum(pool.cl_waiting for pool in self.pools)


def _pool(row: dict[str, Any]) -> Pool:
    # SHOW POOLS gained columns over PgBouncer's versions: read the ones every version since 1.8 has.
    return Pool(database=str(row["database"]), user=str(row["user"]), cl_active=int(row["cl_active"]),
                cl_waiting=int(row["cl_waiting"]), sv_active=int(row["sv_active"]), sv_idle=int(row["sv_idle"]),
                sv_used=int(row["sv_used"]), sv_login=int(row["sv_login"]),
                maxwait_seconds=int(row["maxwait"]) + int(row.get("maxwait_us") or 0) / 1e6,
                pool_mode=str(row.get("pool_mode") or ""))


def read_pools(settings: Settings, env: Environment) -> PoolerUsage | None:
    """The pooler's pools, None when the environment has no pooler, an unreachable one as such (not an error)."""
    pooler = env.pooler
    if pooler is None:
        return None
    address = f"{pooler.host}:{pooler.port}"
    params: dict[str, Any] = {"host": pooler.host, "port": pooler.port, "user": pooler.auth_user,
                              "dbname": "pgbouncer", "connect_timeout": CONSOLE_TIMEOUT,
                              "application_name": "cuisine-db db-connections"}
    if env.is_local:
        params["passfile"] = str(settings.env_dir(env) / "pgpass")
        known = any(entry.user == pooler.auth_user for entry in pgpass.read(settings.env_dir(env) / "pgpass"))
        if not known:
            return PoolerUsage(address, False, f"no password for {pooler.auth_user}: run cuisine-db pooler config")
    else:
        password = settings.secret(pooler.auth_password_env)
        if password:
            params["password"] = password
    try:
        # The admin console speaks the simple query protocol only: a client-side cursor keeps to it.
        with psycopg.connect(**params, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn, \
                conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(sql.load("pooler/show_pools")).fetchall()
    except psycopg.Error as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return PoolerUsage(address, False, message)
    return PoolerUsage(address, True, None, [_pool(row) for row in rows if row["database"] != "pgbouncer"])


def pool_findings(usage: PoolerUsage, env: Environment) -> list[Finding]:
    """The pooler down, or clients queueing for a server connection."""
    if not usage.reachable:
        fix = (f"cuisine-db pooler start --env {env.name}" if env.is_local
               else "check the pgbouncer service on its host")
        return [Finding("pooler down", "error", usage.address, f"PgBouncer does not answer: {usage.problem}", fix)]
    found = []
    for pool in usage.pools:
        if pool.cl_waiting:
            severity = "error" if pool.maxwait_seconds >= WAIT_ERROR_SECONDS else "warning"
            found.append(Finding(
                "clients waiting", severity, f"{pool.user}@{pool.database}",
                f"{pool.cl_waiting} client(s) wait for a server connection (longest {pool.maxwait_seconds:.1f} s); "
                f"{pool.sv_active} busy, {pool.sv_idle} idle",
                "look for long transactions holding the pool (above); then raise max_connections or lower "
                f"pooler.reserved_server_connections and run cuisine-db pooler config --env {env.name}"))
    return found

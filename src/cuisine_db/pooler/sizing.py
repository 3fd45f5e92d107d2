"""PgBouncer's pool sizes from the server's connection slots and the applications expected to connect.

- Server side: every slot an ordinary role may use (`max_connections` minus `superuser_reserved_connections`
  and, from PostgreSQL 16, `reserved_connections`), minus `reserved_server_connections` kept out of the
  pools for migrations, the tool's own commands, monitoring and a person's psql. That budget is
  `max_db_connections` (the hard cap the pooler never exceeds). One of its connections is left to the auth
  role's own pool, which runs auth_query for each new client: PgBouncer does not close another pool's idle
  server connection when the cap is reached, so application pools that filled the cap would leave new
  clients waiting for a lookup until `server_idle_timeout`. The rest is shared between the application
  roles: `default_pool_size` is it divided by their number, and what is left over (at most 5) is the
  `reserve_pool_size` a pool may borrow when clients have waited `reserve_pool_timeout`.
- Client side: `max_client_conn` = applications x connections per application, plus 5 for the admin
  console: every application instance keeps its own pool of client connections, and in transaction
  pooling hundreds of clients share the few server connections.
"""

from __future__ import annotations

from dataclasses import dataclass

from cuisine_db.config import PoolerConfig
from cuisine_db.errors import UsageError

CONSOLE_CONNECTIONS = 5
MAX_RESERVE_POOL = 5
AUTH_POOL = 1


@dataclass(frozen=True, slots=True)
class PoolSizes:
    """What pgbouncer.ini gets, and the figures it came from."""

    max_connections: int
    reserved_slots: int  # superuser_reserved_connections + reserved_connections
    kept_out: int  # reserved_server_connections
    budget: int  # server connections the pools may use: max_db_connections
    roles: int
    default_pool_size: int
    reserve_pool_size: int
    max_client_conn: int

    def explain(self) -> list[str]:
        return [
            f"server connections for the pools: max_connections {self.max_connections} - {self.reserved_slots} "
            f"reserved slots - {self.kept_out} kept for the tool and migrations = {self.budget} (max_db_connections)",
            f"{AUTH_POOL} of them for the auth role's lookups; default_pool_size {self.default_pool_size} for each of "
            f"{self.roles} application role(s), reserve_pool_size {self.reserve_pool_size}",
            f"max_client_conn {self.max_client_conn}: clients of every application instance, plus "
            f"{CONSOLE_CONNECTIONS} for the admin console",
        ]


def size_pools(config: PoolerConfig, *, max_connections: int, superuser_reserved: int, reserved: int,
               roles: int) -> PoolSizes:
    """The pools for a server with these slots; too few slots left for any pool is bad input."""
    reserved_slots = superuser_reserved + reserved
    budget = max_connections - reserved_slots - config.reserved_server_connections
    if budget < 1 + AUTH_POOL:
        raise UsageError(
            f"no server connections left for the pooler: max_connections {max_connections} - {reserved_slots} "
            f"reserved slots - reserved_server_connections {config.reserved_server_connections} = {budget}, and "
            f"the pools need at least {1 + AUTH_POOL}",
            hint="lower pooler.reserved_server_connections in cuisine-db.toml, or raise max_connections "
                 "(make db-update-config param=max_connections value=N restart=1)")
    roles = max(1, roles)
    shared = budget - AUTH_POOL
    default = max(1, shared // roles)
    reserve = max(0, min(MAX_RESERVE_POOL, shared - default * roles))
    return PoolSizes(max_connections=max_connections, reserved_slots=reserved_slots,
                     kept_out=config.reserved_server_connections, budget=budget, roles=roles,
                     default_pool_size=default, reserve_pool_size=reserve,
                     max_client_conn=config.applications * config.connections_per_application + CONSOLE_CONNECTIONS)

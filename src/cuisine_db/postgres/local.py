"""The local clusters behind environments without a DSN: found, created and started when a caller asks.

Whether a command may start one on demand is the start policy's question (cluster/on_demand.py), not this module's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UsageError
from cuisine_db.postgres import binaries, osuser, topology
from cuisine_db.postgres.cluster import LocalCluster
from cuisine_db.postgres.connect import ensure_database


def cluster_for(settings: Settings, env: Environment) -> LocalCluster:
    """The local cluster serving as an environment's primary (it may not exist yet): its own, or the replica
    a promotion made the primary (postgres/topology.py)."""
    if not env.is_local or env.port is None:
        raise UsageError(f"environment {env.name!r} is a remote server, not a local cluster")
    primary = topology.primary_node(settings, env)
    return node_cluster(settings, env, topology.home_of(settings, env, primary), primary.port)


def node_cluster(settings: Settings, env: Environment, home: Path, port: int) -> LocalCluster:
    """A local server of the environment (its primary or a replica) in `home`, on `port`."""
    build = binaries.find(env.postgres_version, settings.cache_dir, env.pg_bin)
    return LocalCluster(
        home=home,
        port=port,
        build=build,
        os_user=os_user_of(settings, env),
        extra_settings=env.server_settings,
    )


def os_user_of(settings: Settings, env: Environment) -> str | None:
    """The OS user an environment's servers (primary, replicas, pgbouncer) run as; None when we are not root (they
    run as us). Each environment has its own, so one environment's superuser (COPY ... TO PROGRAM) cannot read or
    delete another's data directory or WAL: the environment's `os_user`, else a data directory's owner from before
    environments had users of their own (it keeps working as it is), else the top-level `server_user` (one user
    for every environment, by the operator's choice), else `cuisine-<env>`, created on first use."""
    if os.geteuid() != 0:
        return None
    existing = _data_owner(settings, env)
    if env.os_user is not None:
        if existing is not None and existing != env.os_user:
            raise UsageError(f"{env.name}'s data directory belongs to OS user {existing}, but os_user says "
                             f"{env.os_user}", hint=f"stop the cluster and chown -R {env.os_user}: its data, run and "
                             f"wal-spool folders (then wal enable again), or remove os_user to keep {existing}")
        return osuser.ensure_user(env.os_user)
    if existing is not None:
        return existing
    return osuser.ensure_user(settings.server_user or osuser.env_user_name(env.name))


def _data_owner(settings: Settings, env: Environment) -> str | None:
    """Who owns the environment's existing data directory (its own, or the promoted replica's)."""
    homes = [settings.env_dir(env)]
    with contextlib.suppress(CuisineDbError, OSError, ValueError):
        homes.insert(0, topology.home_of(settings, env, topology.primary_node(settings, env)))
    for home in homes:
        if (home / "data" / "PG_VERSION").exists():
            owner = osuser.owner_of(home / "data")
            if owner is not None:
                return owner
    return None


@contextmanager
def startup_lock(settings: Settings, env: Environment) -> Iterator[None]:
    """Serialise cluster start-up between processes (five `make db-migrate` at once must not race); db-upgrade
    holds it too, so that no command starts the cluster mid-upgrade."""
    path = settings.state_dir / f".{env.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_up(settings: Settings, env: Environment) -> LocalCluster:
    """Create and start the environment's cluster if needed, and make sure its database exists."""
    cluster = cluster_for(settings, env)
    with startup_lock(settings, env):
        if not cluster.initialized():
            cluster.init()
        if not cluster.running():
            cluster.start()
        ensure_database(settings, env)
    return cluster

"""The local clusters behind environments without a DSN: found, created, and started explicitly or on demand.

Starting on demand is decided here and nowhere else (`start_refusal`): a protected environment's cluster is
started only by the operator (`make cluster-up env=E`), and a command that only looks (the `monitoring`
purpose: db-monitor, metrics, db-connections, db-show-locks, sizes, status commands) never starts any: a stopped
server is what it must report. Other commands on unprotected environments start it and say so on stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, RefusedError, ServerDownError, UnavailableError, UsageError
from cuisine_db.postgres import binaries, osuser, purposes, topology
from cuisine_db.postgres.cluster import LocalCluster


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


def _refuse_pending_restore(settings: Settings, env: Environment) -> None:
    """A physical restore laid down and not opened starts only through db-apply-logs or by being opened."""
    from cuisine_db.backup.restore_state import pending

    waiting = pending(settings, env)
    if waiting is not None:
        raise RefusedError(
            f"{env.name} holds {waiting.backup}, laid down by db-restore and not opened yet",
            hint=f"make db-apply-logs env={env.name} replays the archive onto it; make maintenance-mode disable "
                 f"env={env.name} (or cuisine-db restore open --env {env.name}) opens it as the backup left it")


def ensure_up(settings: Settings, env: Environment) -> LocalCluster:
    """Create and start the environment's cluster if needed, and make sure its database exists."""
    cluster = cluster_for(settings, env)
    with startup_lock(settings, env):
        if not cluster.initialized():
            cluster.init()
        if not cluster.running():
            _refuse_pending_restore(settings, env)
            cluster.start()
        from cuisine_db.postgres.connect import ensure_database

        ensure_database(settings, env)
    return cluster


# Purposes whose commands only look: starting the server would hide the outage they exist to report.
OBSERVING = frozenset({purposes.MONITORING})


def start_refusal(env: Environment, purpose: str, *, allowed: bool = True) -> str | None:
    """Why a command of this purpose may not start the environment's cluster on demand; None when it may.
    `allowed=False`: the command itself never starts one (status commands, clean-ups)."""
    if not allowed:
        return "this command never starts a server"
    if env.protected:
        return f"{env.name} is protected: only the operator starts it"
    if purpose in OBSERVING:
        return "a command that only looks never starts the server it reports on"
    return None


def start_on_demand(settings: Settings, env: Environment, purpose: str, failure: UnavailableError | None = None,
                    *, allowed: bool = True) -> LocalCluster:
    """The running local cluster a command of this purpose needs: created, started or mended (its database) when
    the policy allows, saying so in one line on stderr; otherwise an error saying what is wrong (stopped:
    ServerDownError, with the way to start it). `failure`: the connection error that brought us here."""
    cluster = cluster_for(settings, env)
    refusal = start_refusal(env, purpose, allowed=allowed)
    if cluster.running():
        if refusal is None:
            return ensure_up(settings, env)
        if failure is not None:
            raise failure  # not a stopped server: a missing database, a refused role; nothing is mended here
        return cluster
    if refusal is not None:
        state = "is stopped" if cluster.initialized() else "has not been created"
        raise ServerDownError(f"{env.name}'s cluster {state} (127.0.0.1:{cluster.port}); nothing was started: "
                              f"{refusal}", hint=f"make cluster-up env={env.name} starts it")
    notice = (f"started {env.name}'s cluster (it was stopped)" if cluster.initialized()
              else f"created and started {env.name}'s cluster (it did not exist)")
    ensure_up(settings, env)
    # Adapters do not print; this one line is the exception: a start nobody asked for must never be silent.
    sys.stderr.write(notice + "\n")
    return cluster

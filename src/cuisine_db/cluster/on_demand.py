"""Starting a local cluster on demand: decided here and nowhere else (`start_refusal`).

A protected environment's cluster is started only by the operator (`make cluster-up env=E`), and a command that
only looks (the `monitoring` purpose: db-monitor, metrics, db-connections, db-show-locks, sizes, status commands)
never starts any: a stopped server is what it must report. Other commands on unprotected environments start it and
say so on stderr. `postgres/connect.py` only connects; services connect through `connect()` here, which applies
the policy when the connection fails, and `up()` is `make cluster-up`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import ServerDownError, UnavailableError
from cuisine_db.postgres import purposes
from cuisine_db.postgres.connect import RoleLimitReached
from cuisine_db.postgres.connect import connect as open_connection
from cuisine_db.postgres.target import Target

if TYPE_CHECKING:
    import psycopg

    from cuisine_db.postgres.cluster import LocalCluster
    from cuisine_db.postgres.patroni_layout import Layout

# Purposes whose commands only look: starting the server would hide the outage they exist to report.
OBSERVING = frozenset({purposes.MONITORING})


def connect(
    settings: Settings,
    env: Environment,
    command: str,
    *,
    autocommit: bool = True,
    dbname: str | None = None,
    start: bool = True,
    purpose: str = purposes.ADMIN,
    target: Target | None = None,
) -> psycopg.Connection[Any]:
    """Open a connection for one command; a local cluster that is down is started only where the start policy
    (`start_refusal`) lets this purpose start it, else the error says it is stopped.

    `start=False` never starts it whatever the policy says (status commands); `purpose` picks the least-privileged
    role meant for the command (postgres/purposes.py) and decides whether starting is allowed; `target` is one of
    the environment's replicas (replicas/routing.py), which is never started here."""
    try:
        try:
            return open_connection(settings, env, command, autocommit=autocommit, dbname=dbname, purpose=purpose,
                                   target=target)
        except UnavailableError as failure:
            if target is not None or not env.is_local:
                raise
            # Not created, not running, or its database is missing: the start policy decides what may be mended.
            start_on_demand(settings, env, purpose, failure, allowed=start)
            return open_connection(settings, env, command, autocommit=autocommit, dbname=dbname, purpose=purpose)
    except RoleLimitReached as refused:
        raise _role_refused(settings, env, refused) from None


def _role_refused(settings: Settings, env: Environment, refused: RoleLimitReached) -> UnavailableError:
    """The role the server refused and why: a maintenance window that blocked it, or its own connection limit."""
    from cuisine_db.ops.maintenance_state import state

    others = [other for other in settings.environments.values() if other.name != env.name]
    for holder in (env, *others):
        current = state(settings, holder)
        if current is not None and refused.user in current.roles:
            where = "" if holder.name == env.name else f" for {holder.name}"
            return UnavailableError(
                f"{refused.user}: connection limit 0 — maintenance mode is on{where} since "
                f"{current.since:%Y-%m-%d %H:%M:%S} UTC by {current.who} ({current.reason}); environment "
                f"{env.name!r} refused this {refused.purpose} connection",
                hint=f"make maintenance-mode status env={holder.name}; make maintenance-mode disable "
                     f"env={holder.name} gives the role back its limit when the work is done")
    return refused


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


def up(settings: Settings, env: Environment) -> LocalCluster:
    """Create and start the environment's cluster if needed (`make cluster-up`), and make sure its database exists;
    a physical restore laid down and not opened starts only through db-apply-logs or by being opened."""
    from cuisine_db.postgres.local import cluster_for, ensure_up

    if not cluster_for(settings, env).running():
        _refuse_pending_restore(settings, env)
    return ensure_up(settings, env)


def patroni_up(settings: Settings, env: Environment, *, notify: Callable[[str], None] = lambda _: None) -> Layout:
    """make cluster-up on an embedded Patroni environment; refused while a restore waits laid down (its members'
    data directories are set aside: started now, Patroni would build an empty cluster or clone one over it)."""
    from cuisine_db.postgres import patroni_embedded

    _refuse_pending_restore(settings, env)
    return patroni_embedded.up(settings, env, notify=notify)


def _refuse_pending_restore(settings: Settings, env: Environment) -> None:
    from cuisine_db.backup.restore_state import refuse_while_pending

    refuse_while_pending(settings, env)


def start_on_demand(settings: Settings, env: Environment, purpose: str, failure: UnavailableError | None = None,
                    *, allowed: bool = True) -> LocalCluster:
    """The running local cluster a command of this purpose needs: created, started or mended (its database) when
    the policy allows, saying so in one line on stderr; otherwise an error saying what is wrong (stopped:
    ServerDownError, with the way to start it). `failure`: the connection error that brought us here."""
    from cuisine_db.postgres.local import cluster_for

    cluster = cluster_for(settings, env)
    refusal = start_refusal(env, purpose, allowed=allowed)
    if cluster.running():
        if refusal is None:
            return up(settings, env)
        if failure is not None:
            raise failure  # not a stopped server: a missing database, a refused role; nothing is mended here
        return cluster
    if refusal is not None:
        state = "is stopped" if cluster.initialized() else "has not been created"
        raise ServerDownError(f"{env.name}'s cluster {state} (127.0.0.1:{cluster.port}); nothing was started: "
                              f"{refusal}", hint=f"make cluster-up env={env.name} starts it")
    notice = (f"started {env.name}'s cluster (it was stopped)" if cluster.initialized()
              else f"created and started {env.name}'s cluster (it did not exist)")
    up(settings, env)
    # Services do not print; this one line is the exception: a start nobody asked for must never be silent.
    sys.stderr.write(notice + "\n")
    return cluster

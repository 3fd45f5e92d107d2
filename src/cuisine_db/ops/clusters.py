"""make cluster-up, cluster-down and cluster destroy for a local environment's cluster (or an embedded Patroni
cluster), each journaled whoever calls it; deleting one is behind the protected-environment confirmation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cuisine_db.cluster import on_demand
from cuisine_db.config import Environment, Settings
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled
from cuisine_db.postgres import cluster_for

if TYPE_CHECKING:
    from cuisine_db.postgres.cluster import LocalCluster
    from cuisine_db.postgres.patroni import Member
    from cuisine_db.postgres.patroni_layout import Layout


@dataclass(frozen=True, slots=True)
class PatroniUp:
    """An embedded Patroni cluster running: its layout and the member that leads."""

    layout: Layout
    leader: Member


@dataclass(frozen=True, slots=True)
class Down:
    """What cluster-down stopped: whether the cluster ran, and on Patroni which processes were stopped."""

    was_running: bool
    stopped: list[str] = field(default_factory=list)


def up(settings: Settings, env: Environment, *, notify: Callable[[str], None] = lambda _: None
       ) -> LocalCluster | PatroniUp:
    """make cluster-up, journaled as `cluster up`: the local cluster created and started if needed, or an embedded
    Patroni cluster (etcd and its members) with the database made and the leader named."""
    if env.embedded_patroni:
        from cuisine_db.postgres import patroni
        from cuisine_db.postgres.connect import ensure_database

        with journaled(settings, env, "cluster up", {}) as entry:
            layout = on_demand.patroni_up(settings, env, notify=notify)
            ensure_database(settings, env)
            leader = patroni.leader(settings, env)
            entry.details.update(leader=leader.name)
        return PatroniUp(layout, leader)
    with journaled(settings, env, "cluster up", {}):
        return on_demand.up(settings, env)


def down(settings: Settings, env: Environment) -> Down:
    """make cluster-down, journaled as `cluster down`: a fast shutdown (sessions disconnected, nothing lost); on an
    embedded Patroni environment replicas, leader and etcd, named in the line."""
    if env.embedded_patroni:
        from cuisine_db.postgres import patroni_embedded

        with journaled(settings, env, "cluster down", {}) as entry:
            stopped = patroni_embedded.down(settings, env)
            entry.details.update(stopped=stopped)
        return Down(bool(stopped), stopped)
    cluster = cluster_for(settings, env)
    with journaled(settings, env, "cluster down", {}):
        was_running = cluster.running()
        cluster.stop()
    return Down(was_running)


def destroy(settings: Settings, env: Environment, *, yes: bool = False, ask: Ask | None = None) -> Path:
    """cluster destroy, journaled: stop env's local cluster and delete its data directory (a protected environment
    asks first); its home. An embedded Patroni environment: every member's data and etcd's."""
    with journaled(settings, env, "cluster destroy", {"yes": yes}):
        if env.embedded_patroni:
            from cuisine_db.postgres import patroni_embedded

            confirmation.require(env, "Deleting every member's data and etcd's", yes=yes, ask=ask)
            patroni_embedded.destroy(settings, env)
            return settings.env_dir(env)
        cluster = cluster_for(settings, env)
        confirmation.require(env, "Deleting every database in the local cluster", yes=yes, ask=ask)
        cluster.destroy()
        return cluster.home

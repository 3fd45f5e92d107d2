"""Starting and stopping a local replica's server (after a reboot, or to take it out of service for a while)."""

from __future__ import annotations

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.postgres import topology
from cuisine_db.postgres.cluster import LocalCluster
from cuisine_db.postgres.local import node_cluster
from cuisine_db.replicas.members import find


def replica_cluster(settings: Settings, env: Environment, name: str) -> LocalCluster:
    """A local replica's server; a remote environment's replicas are not the tool's to start."""
    member = find(settings, env, name)
    if member.node is None:
        raise UsageError(f"replica {name!r} of {env.name!r} runs on another host: start and stop it there")
    return node_cluster(settings, env, topology.home_of(settings, env, member.node), member.node.port)


def start(settings: Settings, env: Environment, name: str) -> LocalCluster:
    cluster = replica_cluster(settings, env, name)
    cluster.start()
    return cluster


def stop(settings: Settings, env: Environment, name: str) -> LocalCluster:
    """Fast shutdown; its slot keeps the WAL it will need, so it catches up when started again."""
    cluster = replica_cluster(settings, env, name)
    cluster.stop()
    return cluster

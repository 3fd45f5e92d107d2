"""Deleting a local environment's cluster (or an embedded Patroni cluster), behind the protected-environment
confirmation."""

from __future__ import annotations

from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.postgres import cluster_for


def destroy(settings: Settings, env: Environment, *, yes: bool = False, ask: Ask | None = None) -> Path:
    """Stop env's local cluster and delete its data directory (a protected environment asks first); its home. An
    embedded Patroni environment: every member's data and etcd's."""
    if env.embedded_patroni:
        from cuisine_db.postgres import patroni_embedded

        confirmation.require(env, "Deleting every member's data and etcd's", yes=yes, ask=ask)
        patroni_embedded.destroy(settings, env)
        return settings.env_dir(env)
    cluster = cluster_for(settings, env)
    confirmation.require(env, "Deleting every database in the local cluster", yes=yes, ask=ask)
    cluster.destroy()
    return cluster.home

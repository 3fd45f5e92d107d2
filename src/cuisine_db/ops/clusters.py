"""Deleting a local environment's cluster, behind the protected-environment confirmation."""

from __future__ import annotations

from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.postgres import cluster_for


def destroy(settings: Settings, env: Environment, *, yes: bool = False, ask: Ask | None = None) -> Path:
    """Stop env's local cluster and delete its data directory (a protected environment asks first); its home."""
    cluster = cluster_for(settings, env)
    confirmation.require(env, "Deleting every database in the local cluster", yes=yes, ask=ask)
    cluster.destroy()
    return cluster.home

"""PostgreSQL adapters: server builds, local clusters, connections and the subprocess runner."""

from cuisine_db.postgres.connect import client_environ, connect, connection_params, describe
from cuisine_db.postgres.local import cluster_for, ensure_up

__all__ = ["client_environ", "cluster_for", "connect", "connection_params", "describe", "ensure_up"]

"""Diagnostics: sizes, connections, the blocking tree and ending sessions (slow queries and indexes: issue 5)."""

from cuisine_db.diagnose.connections import ConnectionUsage, connection_usage
from cuisine_db.diagnose.locks import LockReport, show_locks
from cuisine_db.diagnose.sizes import DatabaseSize, Filesystem, TableSize, database_size, table_sizes

__all__ = ["ConnectionUsage", "DatabaseSize", "Filesystem", "LockReport", "TableSize", "connection_usage",
           "database_size", "show_locks", "table_sizes"]

"""Diagnostics: sizes so far (slow queries, indexes, locks and connections come with their issues)."""

from cuisine_db.diagnose.sizes import DatabaseSize, TableSize, database_size, table_sizes

__all__ = ["DatabaseSize", "TableSize", "database_size", "table_sizes"]

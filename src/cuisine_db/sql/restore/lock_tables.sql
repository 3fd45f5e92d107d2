-- Locks tables for the restore's transaction; returns nothing.
LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE

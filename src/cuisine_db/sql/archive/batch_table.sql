-- Creates this session's temporary table of one batch of ledger lines (primary key and row version), emptied at each commit.
CREATE TEMP TABLE {batch} ON COMMIT DELETE ROWS AS SELECT {key}, xmin AS {version} FROM {table} WITH NO DATA

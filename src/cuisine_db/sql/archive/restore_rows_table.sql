-- Creates a temporary table with the archived columns (no constraints), dropped at commit, for rows on their way back.
CREATE TEMP TABLE {rows} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA

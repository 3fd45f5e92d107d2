-- Inserts the archived rows the table does not hold (by primary key), keeping their identity values; returns nothing (the row count is the number inserted).
INSERT INTO {table} ({columns}) OVERRIDING SYSTEM VALUE SELECT {columns} FROM {rows} ON CONFLICT ({key}) DO NOTHING

-- Loads a table's rows from the backup's COPY text; returns nothing.
COPY {table} ({columns}) FROM STDIN

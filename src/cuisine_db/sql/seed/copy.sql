-- Load one table's rows; FREEZE is allowed because the table was truncated in this transaction.
COPY {table} ({columns}) FROM STDIN (FREEZE)

-- Streams the rows older than the cutoff as COPY text, in primary key order.
COPY (SELECT {columns} FROM {table} WHERE {column} < %(cutoff)s ORDER BY {key}) TO STDOUT

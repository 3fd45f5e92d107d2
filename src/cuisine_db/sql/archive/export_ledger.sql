-- Streams the primary key and row version (xmin) of the rows older than the cutoff as COPY text, in primary key order: what deletion may remove.
COPY (SELECT {key}, xmin FROM {table} WHERE {column} < %(cutoff)s ORDER BY {key}) TO STDOUT

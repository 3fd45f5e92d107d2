-- Bytes of table data (heap and TOAST, without indexes) of the named tables.
SELECT coalesce(sum(pg_table_size(to_regclass(quote_ident(name)))), 0)::bigint FROM unnest(%(tables)s::text[]) AS name

-- How many of the given constraints (schema, table, name arrays) and indexes (schema, name arrays) exist (count).
SELECT (SELECT count(*)
        FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE (n.nspname, t.relname, c.conname) IN (SELECT * FROM unnest(%(constraint_schemas)s::text[],
                                                                          %(constraint_tables)s::text[],
                                                                          %(constraint_names)s::text[])))
     + (SELECT count(*)
        FROM pg_class i
        JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE i.relkind IN ('i', 'I')
          AND (n.nspname, i.relname) IN (SELECT * FROM unnest(%(index_schemas)s::text[], %(index_names)s::text[])))

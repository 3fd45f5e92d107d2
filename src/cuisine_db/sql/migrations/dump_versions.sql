-- Every applied version as an SQL literal in byte order, with schema_migrations' schema-qualified name, for db/schema.sql.
SELECT (SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.oid = to_regclass('schema_migrations')) AS table_name,
       quote_literal(version) AS literal
FROM schema_migrations
ORDER BY version COLLATE "C"

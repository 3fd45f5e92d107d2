-- The schema an extension is installed in and its version, or no row when it is not installed.
SELECT extnamespace::regnamespace::text AS schema, extversion AS version FROM pg_extension WHERE extname = %(name)s

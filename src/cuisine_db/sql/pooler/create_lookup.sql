-- PgBouncer's auth_query function: a login role's name and SCRAM verifier, for ordinary roles only (no superusers, no replication roles, none expired); runs as its owner with a fixed search_path.
CREATE OR REPLACE FUNCTION {schema}.lookup(i_username text, OUT uname text, OUT phash text)
RETURNS record
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
    SELECT a.rolname::text, a.rolpassword::text
    FROM pg_catalog.pg_authid AS a
    WHERE a.rolname = i_username
      AND a.rolcanlogin
      AND NOT a.rolsuper
      AND NOT a.rolreplication
      AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil > pg_catalog.now())
$body$

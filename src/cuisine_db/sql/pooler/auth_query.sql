-- PgBouncer's auth_query (pgbouncer.ini, $1 = the connecting user): one row (uname, phash) for an ordinary login role, none otherwise.
SELECT uname, phash FROM cuisine_pooler.lookup($1)

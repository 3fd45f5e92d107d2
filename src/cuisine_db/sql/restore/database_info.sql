-- The named database and its owner, if it exists: zero or one row (name, owner).
SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner FROM pg_database AS d WHERE d.datname = %(name)s

-- Resets the session's search path after running dump SQL (which empties it); returns nothing.
SELECT pg_catalog.set_config('search_path', %(path)s, true)

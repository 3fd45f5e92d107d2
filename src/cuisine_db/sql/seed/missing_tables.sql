-- The Cuisine Code tables (given as names) that do not exist in the current search path.
SELECT name FROM unnest(%(tables)s::text[]) AS name WHERE to_regclass(quote_ident(name)) IS NULL

-- The database the session is connected to, as named and as quoted for SQL.
SELECT current_database() AS name, quote_ident(current_database()) AS quoted

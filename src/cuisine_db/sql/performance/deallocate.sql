-- Forgets a prepared statement.
DEALLOCATE {name}

-- Remove one parameter from postgresql.auto.conf.
ALTER SYSTEM RESET {name}

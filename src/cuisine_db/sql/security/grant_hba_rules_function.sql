-- Lets a role call the function behind pg_hba_file_rules.
GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO {name}

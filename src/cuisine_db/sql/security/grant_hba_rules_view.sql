-- Lets a role read pg_hba_file_rules (superuser-only by default) so security checks can run without superuser.
GRANT SELECT ON pg_catalog.pg_hba_file_rules TO {name}

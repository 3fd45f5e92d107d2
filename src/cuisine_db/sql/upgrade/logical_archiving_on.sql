-- Archiving for the logical method's new cluster (archive_mode takes effect at its next start: the switch).
ALTER SYSTEM SET archive_mode = {mode}

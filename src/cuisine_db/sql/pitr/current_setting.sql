-- One setting's value as the server runs it now (wal enable on a Patroni environment compares before changing)
SELECT current_setting(%(name)s)

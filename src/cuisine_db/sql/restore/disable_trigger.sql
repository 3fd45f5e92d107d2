-- Disables one trigger (inside the restore's transaction); returns nothing.
ALTER TABLE {table} DISABLE TRIGGER {name}

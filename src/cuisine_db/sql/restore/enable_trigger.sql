-- Enables one trigger again in its previous mode (plain, ALWAYS or REPLICA); returns nothing.
ALTER TABLE {table} ENABLE {mode} TRIGGER {name}

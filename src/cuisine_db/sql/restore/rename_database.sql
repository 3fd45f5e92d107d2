-- Renames a database (nobody may be connected to it); returns nothing.
ALTER DATABASE {old} RENAME TO {new}

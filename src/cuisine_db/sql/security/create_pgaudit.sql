-- Installs pgaudit in the current database (its event triggers name the objects of DDL statements).
CREATE EXTENSION IF NOT EXISTS pgaudit

-- Installs hypopg for the current transaction only (index advice always rolls it back).
CREATE EXTENSION IF NOT EXISTS hypopg

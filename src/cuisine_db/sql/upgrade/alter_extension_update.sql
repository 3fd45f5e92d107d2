-- Bring one extension to its build's default version.
ALTER EXTENSION {name} UPDATE

-- Logical decoding for the publications (takes effect at the next start).
ALTER SYSTEM SET wal_level = logical

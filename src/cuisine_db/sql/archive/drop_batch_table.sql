-- Drops this session's temporary batch table once a deletion is done.
DROP TABLE IF EXISTS {batch}

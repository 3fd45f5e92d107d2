-- Rebuild one index whose collation changed version between the two builds.
REINDEX INDEX {index}

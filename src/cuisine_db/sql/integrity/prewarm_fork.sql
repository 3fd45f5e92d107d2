-- Reads every block of one fork of a relation through shared buffers (verifying checksums); returns the blocks read.
SELECT {schema}.pg_prewarm(%(oid)s::oid::regclass, 'buffer', %(fork)s)

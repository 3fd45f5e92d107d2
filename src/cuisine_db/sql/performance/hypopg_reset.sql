-- Forgets every hypothetical index of this session.
SELECT {schema}.hypopg_reset()

-- Lets the pooler's auth role call the lookup function.
GRANT EXECUTE ON FUNCTION {schema}.lookup(text) TO {role}

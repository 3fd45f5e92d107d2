-- Nobody may call the lookup function unless granted (functions are executable by PUBLIC by default).
REVOKE ALL ON FUNCTION {schema}.lookup(text) FROM PUBLIC

-- Records why a database exists; returns nothing.
COMMENT ON DATABASE {name} IS {comment}

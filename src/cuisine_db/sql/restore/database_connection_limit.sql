-- Sets a database's connection limit; returns nothing.
ALTER DATABASE {name} CONNECTION LIMIT {limit}

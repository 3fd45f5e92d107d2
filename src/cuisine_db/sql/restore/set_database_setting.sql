-- Sets one of a database's own settings; returns nothing.
ALTER DATABASE {name} SET {setting} TO {value}

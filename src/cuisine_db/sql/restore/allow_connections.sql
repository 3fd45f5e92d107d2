-- Lets sessions connect to a database, or not (superusers included); returns nothing.
ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {allow}

-- Creates an empty database from template0 with the server's default locale; returns nothing.
CREATE DATABASE {name} WITH TEMPLATE template0 ENCODING {encoding} OWNER {owner}

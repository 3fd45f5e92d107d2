-- Creates a database (name through sql.Identifier).
CREATE DATABASE {name}

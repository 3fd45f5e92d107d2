-- Creates an empty database from template0 with the backup's encoding and locale; returns nothing.
CREATE DATABASE {name} WITH TEMPLATE template0 ENCODING {encoding} LC_COLLATE {collate} LC_CTYPE {ctype} OWNER {owner}

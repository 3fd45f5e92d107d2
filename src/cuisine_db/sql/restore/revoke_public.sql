-- Takes every privilege on a database away from PUBLIC (before copying another database's grants); returns nothing.
REVOKE ALL ON DATABASE {name} FROM PUBLIC

-- Records a deliberate edit of an applied migration: its new checksum becomes the expected one.
UPDATE schema_migrations SET checksum = %(checksum)s WHERE version = %(version)s

-- Move a table's id sequence past the highest id loaded, so the application's next insert does not collide.
SELECT setval(pg_get_serial_sequence(%(table)s, 'id'), coalesce(max(id), 0) + 1, false) FROM {table}

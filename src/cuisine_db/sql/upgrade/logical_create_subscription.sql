-- Subscribes to a publication; copy_data false when the tables already hold the rows.
CREATE SUBSCRIPTION {name} CONNECTION {conninfo} PUBLICATION {publication} WITH (copy_data = {copy_data})

-- Subscribes, disabled, to a publication through a slot made beforehand (the tables already hold the rows).
CREATE SUBSCRIPTION {name} CONNECTION {conninfo} PUBLICATION {publication}
WITH (copy_data = false, create_slot = false, slot_name = {slot}, enabled = false)

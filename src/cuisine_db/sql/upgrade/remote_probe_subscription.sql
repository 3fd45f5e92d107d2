-- A disabled subscription without a slot: creating it proves the role may subscribe and the server reaches the publisher.
CREATE SUBSCRIPTION {name} CONNECTION {conninfo} PUBLICATION {publication} WITH (connect = true, enabled = false, create_slot = false, copy_data = false)

-- Lets a disabled subscription go without touching a slot on its publisher (the probe never made one).
ALTER SUBSCRIPTION {name} SET (slot_name = NONE)

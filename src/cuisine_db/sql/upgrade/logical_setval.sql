-- Moves one sequence to a value (the next nextval returns value + increment).
SELECT setval(%(name)s::regclass, %(value)s, true)

-- migrate:up
-- expect: warning
-- rules: unique-constraint-builds-index
-- why: ADD PRIMARY KEY builds its index under ACCESS EXCLUSIVE
ALTER TABLE events_2024 ADD PRIMARY KEY (id, at);

-- migrate:down

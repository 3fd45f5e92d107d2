-- migrate:up
-- expect: ok
-- rules: none
-- runtime: yes
-- why: the schema the other files build on: every table is created here, so nothing waits on them; its rows make run-time failures show
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE accounts (
    id      bigint PRIMARY KEY,
    email   varchar(100) NOT NULL,
    nick    varchar(30),
    balance numeric(10,2) NOT NULL DEFAULT 0,
    code    char(4),
    created timestamp
);
CREATE TABLE orders (
    id         bigint PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    total      integer NOT NULL,
    note       text
);
CREATE INDEX orders_account_idx ON orders (account_id);
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, payload text) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO accounts (id, email) SELECT g, 'a' || g || '@example.org' FROM generate_series(1, 50) AS g;
INSERT INTO orders SELECT g, 1 + g % 50, g FROM generate_series(1, 200) AS g;
INSERT INTO events SELECT g, DATE '2024-06-01' + g, 'x' FROM generate_series(1, 400) AS g;

-- migrate:down
DROP TABLE events;
DROP TABLE orders;
DROP TABLE accounts;
DROP TYPE mood;

-- For one child table, in one scan: how many rows of each of its foreign keys have no parent row.
SELECT {counts} FROM {child} AS c {joins}

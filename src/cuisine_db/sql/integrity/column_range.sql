-- The highest and lowest value of one column (an index answers both when the column has one).
SELECT max({column})::numeric AS high, min({column})::numeric AS low FROM {table}

-- The highest value of one integer column (0 for an empty table): a sequence must hand out more than this.
SELECT coalesce(max({column}), 0)::bigint FROM {table}

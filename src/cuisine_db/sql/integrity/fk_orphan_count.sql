-- How many child rows hold a foreign key value no parent row has (an anti-join the planner can answer from the
-- two tables' indexes alone when their pages are all-visible).
SELECT count(*) FROM {child} AS c
WHERE {exempt} AND NOT EXISTS (SELECT FROM {parent} AS p WHERE ({parent_columns}) = ({child_columns}))

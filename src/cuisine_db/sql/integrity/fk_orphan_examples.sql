-- Up to three keys of child rows that reference no parent row through one foreign key.
SELECT ({child_columns})::text AS key FROM {child} AS c
WHERE {exempt} AND NOT EXISTS (SELECT FROM {parent} AS p WHERE ({parent_columns}) = ({child_columns}))
LIMIT 3

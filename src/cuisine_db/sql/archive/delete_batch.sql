-- Deletes the batch's rows still at the exported version and referenced by nobody: one row (deleted, present before: deleted plus rows kept because they changed or are referenced).
WITH gone AS (
    DELETE FROM {table} AS t USING {batch} AS b
    WHERE {match} AND t.xmin = b.{version}{unreferenced}
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS deleted,
       (SELECT count(*) FROM {table} AS t JOIN {batch} AS b ON {match}) AS present

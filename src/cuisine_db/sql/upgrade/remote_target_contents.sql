-- What a target database already holds of its own (relations in user schemas, schemas besides public), extensions' members not counted: an empty target has none.
SELECT (SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
          AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype = 'e')) AS relations,
       (SELECT count(*) FROM pg_namespace AS s
        WHERE s.nspname NOT IN ('public', 'information_schema') AND s.nspname NOT LIKE 'pg\_%'
          AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = s.oid
                          AND d.deptype = 'e')) AS schemas

-- What the connected role can reach beyond the application's tables: one row per power db-explain must not have.
SELECT 'superuser' AS power
FROM pg_roles WHERE rolname = current_user AND rolsuper
UNION ALL
SELECT 'membership in ' || r.rolname
FROM pg_roles AS r
WHERE r.rolname IN ('pg_signal_backend', 'pg_read_server_files', 'pg_write_server_files',
                    'pg_execute_server_program', 'pg_write_all_data')
  AND pg_has_role(current_user, r.oid, 'USAGE')
UNION ALL
SELECT 'EXECUTE on ' || count(*) || ' function(s) of extension ' || e.extname || ' ('
       || string_agg(DISTINCT p.proname, ', ') || ')'
FROM pg_extension AS e
JOIN pg_depend AS d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
                   AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
JOIN pg_proc AS p ON p.oid = d.objid
WHERE e.extname IN ('dblink', 'adminpack')
  AND p.prorettype <> 'fdw_handler'::regtype
  AND p.proname NOT LIKE '%validator'
  AND has_function_privilege(p.oid, 'EXECUTE')
GROUP BY e.extname
UNION ALL
SELECT 'USAGE on foreign-data wrapper ' || w.fdwname
FROM pg_foreign_data_wrapper AS w
WHERE has_foreign_data_wrapper_privilege(w.oid, 'USAGE')
UNION ALL
SELECT 'USAGE on foreign server ' || s.srvname
FROM pg_foreign_server AS s
WHERE has_server_privilege(s.oid, 'USAGE')
ORDER BY 1

-- What a role owns or holds privileges on: per database, the kind of dependency, and the object where it can be named here.
SELECT CASE WHEN d.dbid = 0 THEN '(whole cluster)' ELSE coalesce(db.datname, '?') END AS database,
       CASE d.deptype WHEN 'o' THEN 'owner' WHEN 'a' THEN 'privileges' WHEN 'r' THEN 'policy'
                      ELSE 'dependency' END AS kind,
       CASE WHEN d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
            THEN pg_describe_object(d.classid, d.objid, d.objsubid) END AS object,
       d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())) AS here
FROM pg_shdepend AS d
LEFT JOIN pg_database AS db ON db.oid = d.dbid
WHERE d.refclassid = 'pg_authid'::regclass
  AND d.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %(name)s)
ORDER BY 1, 2, 3

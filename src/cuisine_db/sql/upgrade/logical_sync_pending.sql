-- How many tables of a subscription have not finished their initial copy (state other than ready).
SELECT count(*) FILTER (WHERE r.srsubstate <> 'r') AS pending, count(*) AS tables
FROM pg_subscription_rel AS r
JOIN pg_subscription AS s ON s.oid = r.srsubid
WHERE s.subname = %(name)s

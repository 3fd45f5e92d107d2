-- Whether a subscription of this name exists in the current database (exists).
SELECT EXISTS (SELECT 1 FROM pg_subscription
              WHERE subname = %(name)s
                AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())) AS exists

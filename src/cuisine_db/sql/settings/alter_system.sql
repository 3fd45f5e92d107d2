-- Write one parameter to postgresql.auto.conf (takes effect on reload, or on restart for postmaster settings).
ALTER SYSTEM SET {name} = {value}

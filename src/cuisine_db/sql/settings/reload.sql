-- Ask the postmaster to re-read the configuration files; returns true when the signal was sent.
SELECT pg_reload_conf()

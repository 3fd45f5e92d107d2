-- When this session last read the configuration files (changes after a reload reaches it).
SELECT pg_conf_load_time()

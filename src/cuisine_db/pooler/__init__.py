"""PgBouncer in front of an environment (issue 9): its configuration and auth (`setup`, `auth`, `sizing`), running
it for a local environment (`process`), and its pools for db-connections (`pools`)."""

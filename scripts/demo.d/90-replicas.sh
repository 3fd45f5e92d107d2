# Read replicas and pooling (issue 9): a streaming replica of production, and one seeded from the repository (the
# full backup of the PITR part plus the archive), their lag, reads and backups routed to them, then PgBouncer in
# front of production. Sourced by scripts/demo.sh (step, $cli). Promotion is left out: it
# would move production's primary for good (make db-promote-replica; tests/integration/test_replicas.py).

# A rerun finds the replica of the last run: it goes first (its slot too).
$cli replica drop --env production --name reports1 --yes >/dev/null 2>&1 || true
$cli replica drop --env production --name reports2 --yes >/dev/null 2>&1 || true

step "make db-create-replica env=production name=reports1 (pg_basebackup -R, a slot, its own port)"
$cli replica create --env production --name reports1
step "make db-create-replica env=production name=reports2 from=backup (the newest full backup and the WAL archive)"
$cli replica create --env production --name reports2 --from backup
step "make db-replicas env=production"
$cli replica list --env production
step "make db-table-sizes env=production replica=any limit=5 (from a replica within the lag bound)"
$cli table-sizes --env production --replica any --limit 5
step "make db-backup env=production type=logical from=replica (the dump's reads stay off the primary)"
$cli backup create --env production --type logical --from replica
step "make db-backup env=production type=full replica=reports2 (pg_basebackup against the replica)"
$cli backup create --env production --type full --replica reports2

step "PgBouncer: make db-pooler-config env=production, make pooler-up (a [pooler] table added for the tour)"
# The copy sits next to the config it extends, so its relative paths (state_dir, repository) mean the same.
config=${CUISINE_DB_CONFIG:-cuisine-db.toml}
pooled=$(mktemp "$(dirname "$config")/.demo-pooler-XXXXXX.toml")
trap 'rm -f "$pooled"' EXIT
{ cat "$config"
  printf '\n[environments.production.pooler]\nport = %s\n' \
    "$(.venv/bin/python -c 'from cuisine_db.postgres.ports import free_port; print(free_port())')"; } > "$pooled"
CUISINE_DB_CONFIG=$pooled $cli pooler config --env production
CUISINE_DB_CONFIG=$pooled $cli pooler start --env production
step "make db-connections env=production (with PgBouncer's SHOW POOLS)"
CUISINE_DB_CONFIG=$pooled $cli connections --env production || true
CUISINE_DB_CONFIG=$pooled $cli pooler stop --env production
rm -f "$pooled"

step "make db-drop-replica env=production name=reports1 yes=1 (stops it, drops its slot); reports2 too"
$cli replica drop --env production --name reports1 --yes
$cli replica drop --env production --name reports2 --yes

# Read replicas and pooling (issue 9): a streaming replica of production, and one seeded from the repository (the
# full backup of the PITR part plus the archive), their lag, reads and backups routed to them, then PgBouncer in
# front of production. Sourced by scripts/demo.sh (part, step, on_cleanup, $cli). Promotion is left out: it
# would move production's primary for good (make db-promote-replica; tests/integration/test_replicas.py).

part "Read replicas and pooling"
# A rerun finds the replica of a run that was killed: it goes first (its slot too).
$cli replica drop --env production --name reports1 --yes >/dev/null 2>&1 || true
$cli replica drop --env production --name reports2 --yes >/dev/null 2>&1 || true

on_cleanup "replica reports1" $cli replica drop --env production --name reports1 --yes
step -r "streams from" "make db-create-replica env=production name=reports1 (pg_basebackup -R, a slot, its own port)" \
  $cli replica create --env production --name reports1
on_cleanup "replica reports2" $cli replica drop --env production --name reports2 --yes
step -r "streams from" "make db-create-replica env=production name=reports2 from=backup (the newest full backup and the archive)" \
  $cli replica create --env production --name reports2 --from backup
step -r "replication" "make db-replicas env=production" $cli replica list --env production
step -r "reading from" "make db-table-sizes env=production replica=any limit=5 (from a replica within the lag bound)" \
  $cli table-sizes --env production --replica any --limit 5
step -r "stored as" "make db-backup env=production type=logical from=replica (the dump's reads stay off the primary)" \
  $cli backup create --env production --type logical --from replica
step -r "stored as" "make db-backup env=production type=full replica=reports2 (pg_basebackup against the replica)" \
  $cli backup create --env production --type full --replica reports2

if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then
  # The copy sits next to the config it extends, so its relative paths (state_dir, repository) mean the same.
  pooled=$(mktemp "$(dirname "$config")/.demo-pooler-XXXXXX.toml")
  on_cleanup "PgBouncer" bash -c "CUISINE_DB_CONFIG=$pooled $cli pooler stop --env production; rm -f $pooled"
  { cat "$config"
    printf '\n[environments.production.pooler]\nport = %s\n' \
      "$(.venv/bin/python -c 'from cuisine_db.postgres.ports import free_port; print(free_port())')"; } >"$pooled"
  pooler_up() {
    CUISINE_DB_CONFIG=$pooled $cli pooler config --env production
    CUISINE_DB_CONFIG=$pooled $cli pooler start --env production
  }
  step -r "listens on" "make db-pooler-config env=production, make pooler-up (a [pooler] table added for the tour)" pooler_up
  pooled_connections() {
    CUISINE_DB_CONFIG=$pooled $cli connections --env production || echo "(exit $?)"
    CUISINE_DB_CONFIG=$pooled $cli pooler stop --env production
  }
  step -r "verdict" "make db-connections env=production, make pooler-down (with PgBouncer's SHOW POOLS)" pooled_connections
  rm -f "$pooled"
  cleanup_done "PgBouncer"
else
  for title in "make db-pooler-config env=production, make pooler-up" "make db-connections env=production, make pooler-down"; do
    skip_step "$title" "pgbouncer is not installed (sudo make deps installs it)"
  done
fi

drop_both() {
  $cli replica drop --env production --name reports1 --yes
  cleanup_done "replica reports1"
  $cli replica drop --env production --name reports2 --yes
  cleanup_done "replica reports2"
}
step -r "dropped" "make db-drop-replica env=production name=reports1|reports2 yes=1 (stops each, drops its slot)" drop_both

# Point-in-time recovery (issue 4): WAL archiving, a full physical backup, an accident found in the archived WAL
# and one table brought back to just before it. Sourced by scripts/demo.sh (part, step, $cli). The whole-cluster
# disaster flow (db-restore backup=latest, then db-apply-logs) runs in tests/integration/test_pitr_drill.py.

part "Point-in-time recovery"
sql() { $cli psql --env production -- -X -q -A -t -c "$1"; }

step -r "WAL archiving is on|restarted" "make db-wal-enable env=production restart=1 yes=1 (archive_command = cuisine-db wal push)" \
  $cli wal enable --env production --restart --yes

step -r "stored as" "make db-backup env=production type=full (pg_basebackup, zstd, age, sha256)" \
  $cli backup create --env production --type full

accident() {
  sql "SET client_min_messages = warning; DROP TABLE IF EXISTS pitr_demo; CREATE TABLE pitr_demo (id int PRIMARY KEY, note text);
       INSERT INTO pitr_demo SELECT g, 'order ' || g FROM generate_series(1, 2000) g;"
  xid=$(sql "WITH gone AS (DELETE FROM pitr_demo RETURNING id) SELECT txid_current() FROM (SELECT count(*) FROM gone) g")
  local segment
  segment=$(sql "SELECT pg_walfile_name(pg_switch_wal())")
  for _ in $(seq 120); do
    [ "$(sql "SELECT last_archived_wal >= '$segment' FROM pg_stat_archiver")" = t ] && break
    sleep 0.5
  done
  echo "transaction $xid deleted the 2,000 rows of pitr_demo; segment $segment is archived"
}
step "An accident after the backup: DELETE FROM pitr_demo (2,000 rows), then the segment is archived" accident

step -r "before DELETE" "make db-find-target env=production table=pitr_demo min_rows=1000" \
  $cli restore find-target --env production --table pitr_demo --min-rows 1000

restore_before() {
  $cli restore tables --env production --backup latest --tables pitr_demo --xid "$xid" --exclusive --yes
  echo "pitr_demo holds $(sql "SELECT count(*) FROM pitr_demo") rows again"
}
step -r "rows again" "make db-restore-tables env=production backup=latest tables=pitr_demo xid=$xid inclusive=0 yes=1" \
  restore_before

statuses() { $cli wal status --env production; $cli backup status --env production; }
step -r "newest full backup" "make db-wal-status env=production and make db-backup-status env=production" statuses

step -r "nightly" "make db-schedule env=production format=cron (the runbook's 01:00 UTC full backup, retention, verification)" \
  $cli schedule show --env production --format cron

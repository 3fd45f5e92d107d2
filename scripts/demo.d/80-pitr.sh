# Point-in-time recovery (issue 4): WAL archiving, a full physical backup, an accident found in the archived WAL
# and one table brought back to just before it. Sourced by scripts/demo.sh (step, $cli). The whole-cluster
# disaster flow (db-restore backup=latest, then db-apply-logs) runs in tests/integration/test_pitr_drill.py.

sql() { $cli psql --env production -- -X -q -A -t -c "$1"; }

step "make db-wal-enable env=production restart=1 yes=1 (archive_command = cuisine-db wal push)"
$cli wal enable --env production --restart --yes

step "make db-backup env=production type=full (pg_basebackup, zstd, age, sha256)"
$cli backup create --env production --type full

step "An accident after the backup: DELETE FROM pitr_demo (2,000 rows), then the segment is archived"
sql "SET client_min_messages = warning; DROP TABLE IF EXISTS pitr_demo; CREATE TABLE pitr_demo (id int PRIMARY KEY, note text);
     INSERT INTO pitr_demo SELECT g, 'order ' || g FROM generate_series(1, 2000) g;"
xid=$(sql "WITH gone AS (DELETE FROM pitr_demo RETURNING id) SELECT txid_current() FROM (SELECT count(*) FROM gone) g")
segment=$(sql "SELECT pg_walfile_name(pg_switch_wal())")
for _ in $(seq 120); do
  [ "$(sql "SELECT last_archived_wal >= '$segment' FROM pg_stat_archiver")" = t ] && break
  sleep 0.5
done

step "make db-find-target env=production table=pitr_demo min_rows=1000"
$cli restore find-target --env production --table pitr_demo --min-rows 1000

step "make db-restore-tables env=production backup=latest tables=pitr_demo xid=$xid inclusive=0 yes=1"
$cli restore tables --env production --backup latest --tables pitr_demo --xid "$xid" --exclusive --yes
echo "pitr_demo holds $(sql "SELECT count(*) FROM pitr_demo") rows again"

step "make db-wal-status env=production and make db-backup-status env=production"
$cli wal status --env production
$cli backup status --env production

step "make db-schedule env=production format=cron (the runbook's 01:00 UTC full backup, retention, verification)"
$cli schedule show --env production --format cron

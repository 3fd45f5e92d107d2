# Archiving old data (issue 6, item 8: the runbook's Monthly "Archive old data if applicable"). Sourced by
# scripts/demo.sh, which defines part, step and $cli; the backup part made the key pair archives are encrypted to.

part "Archiving old data"
step -r "would|rows" "make db-archive-data env=production table=executions older-than=365d dry-run=1" \
  $cli archive create --env production --table executions --older-than 365d --dry-run

step -r "deleted|rows" "make db-archive-data env=production table=executions older-than=365d yes=1 (exported, checked, deleted in batches)" \
  $cli archive create --env production --table executions --older-than 365d --yes

archives() { $cli archive list --env production; $cli archive verify latest --env production; }
step -r "all good" "make db-archives env=production and make db-verify-archive archive=latest" archives

restore_twice() {
  $cli archive restore --env production --archive latest --yes
  $cli archive restore --env production --archive latest --yes
}
step -r "are back" "make db-archive-data env=production restore=1 archive=latest yes=1 (twice: the second inserts nothing)" \
  restore_twice

# Archiving old data (issue 6, item 8: the runbook's Monthly "Archive old data if applicable"). Sourced by
# scripts/demo.sh, which defines $cli and step; the backup part made the age key pair archives are encrypted to.

step "make db-archive-data env=production table=executions older-than=365d dry-run=1"
$cli archive create --env production --table executions --older-than 365d --dry-run

step "make db-archive-data env=production table=executions older-than=365d yes=1 (exported, checked, then deleted in batches)"
$cli archive create --env production --table executions --older-than 365d --yes

step "make db-archives env=production and make db-verify-archive archive=latest"
$cli archive list --env production
$cli archive verify latest --env production

step "make db-archive-data env=production restore=1 archive=latest yes=1 (twice: the second inserts nothing)"
$cli archive restore --env production --archive latest --yes
$cli archive restore --env production --archive latest --yes

# Backups (issue 3): encrypted logical backups, the catalog, verification, test restore, maintenance mode,
# full and table restores, retention. Sourced by scripts/demo.sh, which defines part, step, on_cleanup and $cli.

part "Backups and restores"
step -r "backup.key" "cuisine-db backup keygen (an age key pair, made once; keep .cuisine/keys/backup.key safe)" \
  $cli backup keygen --if-missing

step -r "stored as" "make db-backup env=production type=logical" $cli backup create --env production --type logical
step -r "stored as" "make db-backup env=production type=tables tables=users,recipes" \
  $cli backup create --env production --type tables --tables users,recipes
step -r "stored as" "make db-backup env=production type=full (the whole cluster: the point-in-time base)" \
  $cli backup create --env production --type full

backup=$($cli backup list --env production --json \
  | .venv/bin/python -c 'import json, sys; print([b["name"] for b in json.load(sys.stdin) if b["type"] == "logical"][-1])')

step -r "all good" "make db-verify-backup backup=$backup" $cli backup verify "$backup"
step -r "restored on" "make db-test-restore env=staging backup=$backup" \
  $cli restore test --env staging --backup "$backup"
step "make db-backups env=production" $cli backup list --env production

on_cleanup "maintenance mode" $cli maintenance disable --env production
step -r "maintenance mode is ON" "make maintenance-mode enable reason=\"Database restoration in progress\" env=production" \
  $cli maintenance enable --env production --reason "Database restoration in progress"
step -r "restored" "make db-restore env=production backup=$backup yes=1" \
  $cli restore database --env production --backup "$backup" --yes
step "make maintenance-mode disable env=production" $cli maintenance disable --env production
cleanup_done "maintenance mode"

step -r "restored" "make db-restore env=development backup=$backup (production's backup, into development)" \
  $cli restore database --env development --backup "$backup"
step -r "restored" "make db-restore-tables env=production backup=latest tables=users,recipes yes=1" \
  $cli restore tables --env production --backup latest --tables users,recipes --yes

drop_leftovers() {
  $cli restore leftovers --env production
  local env kept
  for env in production development; do
    for kept in $($cli restore leftovers --env "$env" --json | .venv/bin/python -c \
        'import json, sys; print(" ".join(d["name"] for d in json.load(sys.stdin)))'); do
      $cli restore drop-leftover --env "$env" "$kept" --yes
    done
  done
}
step -r "dropped|leftover" "cuisine-db restore leftovers --env production, then drop-leftover (what restores kept)" \
  drop_leftovers

step -r "backup\(s\).*to delete|would remove [0-9]+ backup" "make db-expire-backups env=production dry-run=1 (7 daily, 4 weekly, 12 monthly)" \
  $cli backup expire --env production --dry-run

#!/usr/bin/env bash
# The tour behind `make demo`: every step is a command an operator would run, shown as one line (its runbook
# command, its time, its result); the commands' own output goes to .cuisine/demo.log (VERBOSE=1 shows it too).
# If a step fails, the tour stops, shows that step's last lines, and undoes what it started beyond the three
# environments (replicas, PgBouncer, the metrics server, maintenance mode, an open incident).
set -euo pipefail
cd "$(dirname "$0")/.."
cli=.venv/bin/cuisine-db
config=${CUISINE_DB_CONFIG:-cuisine-db.toml}
# shellcheck source=scripts/tour.sh
source scripts/tour.sh
tour_start .cuisine/demo.log

part "Three local PostgreSQL 14 environments"
builds() { $cli postgres install 14; $cli postgres list; }
step -r ready "cuisine-db postgres install 14 (the runbook's production runs 14)" builds
clusters() {
  $cli env list
  for env in development staging production; do
    $cli cluster up --env "$env"
  done
}
step "make cluster-up env=development|staging|production" clusters

part "Migrations and data"
# db/schema.sql is the committed dump of the migrated schema; the tour's migrations write theirs beside the
# environments (a copy of the configuration, next to it so its relative paths hold, says where) and compare.
migrate_all() {
  local migrate_config=$config
  if ! grep -q '^schema_file' "$config"; then
    migrate_config=$(mktemp "$(dirname "$config")/.demo-schema-XXXXXX.toml")
    on_cleanup "schema configuration copy" rm -f "$migrate_config"
    { printf 'schema_file = ".cuisine/demo-schema.sql"\n'; cat "$config"; } >"$migrate_config"
  fi
  rm -f .cuisine/demo-schema.sql
  for env in development staging production; do
    CUISINE_DB_CONFIG=$migrate_config $cli migrate up --env "$env"
  done
  if [ "$migrate_config" != "$config" ]; then
    rm -f "$migrate_config"
    cleanup_done "schema configuration copy"
    if [ ! -e .cuisine/demo-schema.sql ]; then
      echo "every environment was up to date: no schema dump written"
    elif cmp -s .cuisine/demo-schema.sql db/schema.sql; then
      echo "schema dump identical to db/schema.sql (written to .cuisine/demo-schema.sql)"
    else
      echo "schema dump differs from db/schema.sql: diff .cuisine/demo-schema.sql db/schema.sql"
    fi
  fi
}
step -r "schema dump" "make db-migrate env=development|staging|production" migrate_all
step -r loaded "make db-seed env=production scale=2 yes=1 (Cuisine Code data)" $cli seed --env production --scale 2 --yes
step "make db-migrate-status env=production" $cli migrate status --env production
sizes() { $cli table-sizes --env production; $cli size --env production; }
step -r "^cuisine:" "make db-table-sizes env=production, make db-size env=production" sizes

# Each later part of the tour (backups, diagnostics, security, recovery) is its own file, run in order.
for tour_part in scripts/demo.d/*.sh; do
  [ -e "$tour_part" ] || continue
  # shellcheck source=/dev/null
  source "$tour_part"
done

part "The journal"
journal() {
  tail -n 3 .cuisine/production/journal.jsonl
  echo "$(wc -l <.cuisine/production/journal.jsonl) commands journaled on production, the last: $(tail -n 1 \
    .cuisine/production/journal.jsonl | .venv/bin/python -c 'import json, sys; e = json.load(sys.stdin); print(e["command"], e["outcome"])')"
}
step -r "journaled" "tail -n 3 .cuisine/production/journal.jsonl (one line per mutating command)" journal

TOUR_DONE="Next: make db-psql env=production, make help"

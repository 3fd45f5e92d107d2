#!/usr/bin/env bash
# The tour behind `make demo`: every step is a command an operator would run.
set -euo pipefail
cd "$(dirname "$0")/.."
cli=.venv/bin/cuisine-db
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "PostgreSQL builds (the runbook's production runs 14)"
$cli postgres install 14
$cli postgres list

step "Three local environments"
$cli env list
for env in development staging production; do
  $cli cluster up --env "$env"
done

step "make db-migrate env=development|staging|production"
for env in development staging production; do
  $cli migrate up --env "$env"
done

step "Seed production with Cuisine Code data (scale 2)"
$cli seed --env production --scale 2 --yes

step "make db-migrate-status env=production"
$cli migrate status --env production

step "make db-table-sizes env=production"
$cli table-sizes --env production
$cli size --env production

# Each later part of the tour (backups, diagnostics, security, recovery) is its own file, run in order.
for part in scripts/demo.d/*.sh; do
  [ -e "$part" ] || continue
  # shellcheck source=/dev/null
  source "$part"
done

step "The journal of production (one line per mutating command)"
tail -n 3 .cuisine/production/journal.jsonl

printf '\nDone. Try: make db-psql env=production, make db-rollback env=staging steps=1, make help\n'

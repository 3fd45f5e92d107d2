# Disaster recovery and integrity (issue 8): an incident is opened, the integrity and corruption checks run
# while it is open (so they land on its timeline), and it is resolved with its report. Sourced by scripts/demo.sh.

part "Incidents and integrity"
open_incident() {
  incident=$($cli incident create --severity 3 --description "Integrity rehearsal")
  on_cleanup "open incident" $cli incident resolve "$incident" --note "the demo stopped before resolving it"
  echo "opened $incident"
}
step -r "opened" "make incident-create severity=3 description=\"Integrity rehearsal\" (prints the incident's id)" open_incident

step -r "no problems|problem" "make db-verify-integrity env=production (amcheck, checksums, collations, constraints, sequences)" \
  $cli integrity verify --env production

step -r "no damaged|damaged" "make db-check-corruption env=production (pg_amcheck and every other page)" \
  $cli integrity corruption --env production

step -r "no problems|problem" "make db-verify-tables env=production tables=users,recipes" \
  $cli integrity tables --env production --tables users,recipes

resolve_and_report() {
  $cli incident resolve "$incident" --note "Rehearsal: nothing damaged"
  cleanup_done "open incident"
  $cli incident report "$incident"
}
step -r "^resolved" "make incident-resolve id=$incident, then make incident-report id=$incident" resolve_and_report

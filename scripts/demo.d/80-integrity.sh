# Disaster recovery and integrity (issue 8): an incident is opened, the integrity and corruption checks run
# while it is open (so they land on its timeline), and it is resolved with its report.

step "make incident-create severity=3 description=\"Integrity rehearsal\" (prints the incident's id)"
incident=$($cli incident create --severity 3 --description "Integrity rehearsal")

step "make db-verify-integrity env=production (amcheck, checksums, collations, constraints, sequences)"
$cli integrity verify --env production

step "make db-check-corruption env=production (pg_amcheck and every other page)"
$cli integrity corruption --env production

step "make db-verify-tables env=production tables=users,recipes"
$cli integrity tables --env production --tables users,recipes

step "make incident-resolve id=$incident, then make incident-report id=$incident"
$cli incident resolve "$incident" --note "Rehearsal: nothing damaged"
$cli incident report "$incident"

# Troubleshooting and monitoring (issue 6): sourced by scripts/demo.sh, which defines $cli and step.
# Commands that report problems exit 1; the tour shows them and goes on.

step "make db-connections env=production"
$cli connections --env production || true

step "A blocking chain on production: a transaction holds recipes, two sessions wait behind it"
$cli psql --env production -- -X -q -c "BEGIN; LOCK TABLE recipes IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT" \
  >/dev/null 2>&1 &
blocker_job=$!
sleep 1
for _ in 1 2; do
  $cli psql --env production -- -X -q -c "SELECT count(*) FROM recipes" >/dev/null 2>&1 &
done
sleep 2

step "make db-show-locks env=production"
$cli locks --env production
root_pid=$($cli locks --env production --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["roots"][0]["pid"])')

step "make db-terminate-query env=production pid=$root_pid yes=1 (cancel first: the blocker's pg_sleep stops)"
$cli terminate-query --env production --pid "$root_pid" --yes || true
wait "$blocker_job" 2>/dev/null || true
wait 2>/dev/null || true

step "make db-terminate-query pid=abc (bad input: one line, exit 2, nothing sent)"
$cli terminate-query --env production --pid 'abc' || echo "(exit $?)"

step "make db-size env=production and make db-table-sizes env=production limit=5"
$cli size --env production
$cli table-sizes --env production --limit 5

step "make db-monitor env=production (and nagios=1 for a scheduler)"
$cli monitor --env production || true
$cli monitor --env production --nagios || echo "(nagios exit $?)"

step "make db-growth env=production"
$cli growth --env production

step "cuisine-db metrics serve --env production (scraped once)"
metrics_port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$cli metrics serve --env production --port "$metrics_port" 2>/dev/null &
metrics_job=$!
for _ in $(seq 1 50); do
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$metrics_port/metrics')" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
.venv/bin/python -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$metrics_port/metrics').read().decode())" \
  | grep -E '^cuisine_db_(up|connections_in_use|database_size_bytes|check_status)' || true
kill "$metrics_job"
wait "$metrics_job" 2>/dev/null || true

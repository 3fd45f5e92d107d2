# Troubleshooting and monitoring (issue 6): sourced by scripts/demo.sh, which defines part, step, on_cleanup and
# $cli. Commands that report problems exit 1; the tour shows that exit and goes on.

part "Troubleshooting and monitoring"
step -x 1 -r "verdict|slots" "make db-connections env=production" $cli connections --env production

blocking_chain() {
  $cli psql --env production -- -X -q -c "BEGIN; LOCK TABLE recipes IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT" \
    >/dev/null 2>&1 &
  blocker_job=$!
  on_cleanup "blocking sessions" kill "$blocker_job"
  sleep 1
  for _ in 1 2; do
    $cli psql --env production -- -X -q -c "SELECT count(*) FROM recipes" >/dev/null 2>&1 &
  done
  sleep 2
  echo "one transaction holds recipes; two sessions wait behind it"
}
step "A blocking chain on production: a transaction holds recipes, two sessions wait behind it" blocking_chain

step -r "waiting" "make db-show-locks env=production" $cli locks --env production
root_pid=$($cli locks --env production --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["roots"][0]["pid"])')

terminate() {
  local rc=0
  $cli terminate-query --env production --pid "$root_pid" --yes || rc=$?
  if [ "$rc" != 0 ]; then
    # Once setup-roles (below, or in an earlier run) made the operator role, the tool signals with it, and it may not
    # signal a superuser's session such as this blocker: say so, and end the blocker with psql instead.
    $cli psql --env production -- -X -q -A -t -c "SELECT pg_cancel_backend($root_pid)" >/dev/null
    echo "exit $rc (see above); the blocker was cancelled with psql instead"
  fi
  wait "$blocker_job" 2>/dev/null || true
  wait 2>/dev/null || true
}
step -r "^freed|cancelled with psql" \
  "make db-terminate-query env=production pid=$root_pid yes=1 (cancel first: the blocker's pg_sleep stops)" terminate
cleanup_done "blocking sessions"

step -x 2 -r "error" "make db-terminate-query pid=abc (bad input: one line, exit 2, nothing sent)" \
  $cli terminate-query --env production --pid 'abc'

sizes_top5() { $cli size --env production; $cli table-sizes --env production --limit 5; }
step -r "^cuisine:" "make db-size env=production and make db-table-sizes env=production limit=5" sizes_top5

monitor_both() {
  local rc=0 nagios=0
  $cli monitor --env production || rc=$?
  $cli monitor --env production --nagios >"$TOUR_LOG.nagios" || nagios=$?
  cat "$TOUR_LOG.nagios"
  echo "db-monitor exit $rc; nagios=1 exit $nagios: $(head -n 1 "$TOUR_LOG.nagios" | cut -d'|' -f1)"
  rm -f "$TOUR_LOG.nagios"
}
step -r "nagios=1 exit" "make db-monitor env=production (and nagios=1 for a scheduler)" monitor_both

step -r "days until full" "make db-growth env=production" $cli growth --env production

metrics_once() {
  local metrics_port
  metrics_port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  $cli metrics serve --env production --port "$metrics_port" 2>/dev/null &
  metrics_job=$!
  on_cleanup "metrics server" kill "$metrics_job"
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
  cleanup_done "metrics server"
}
step -r "cuisine_db_up" "cuisine-db metrics serve --env production (scraped once)" metrics_once

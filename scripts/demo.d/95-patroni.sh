# High availability (issue 19): the ha environment, three Patroni members and etcd on this machine; a switchover
# while a writer keeps inserting rows through the tool (each insert goes to whichever member leads); then stopped.
# Sourced by scripts/demo.sh (part, step, skip_step, on_cleanup, $cli).

part "High availability with Patroni"
if ! command -v etcd >/dev/null; then
  skip_step "make cluster-up env=ha (etcd and three Patroni members)" "etcd is not installed (sudo make deps installs etcd-server)"
else
  on_cleanup "Patroni cluster ha" $cli cluster down --env ha
  step -r "Patroni cluster" "make cluster-up env=ha (etcd and three Patroni members on free ports)" $cli cluster up --env ha
  switchover_to_sync_standby() {
    sleep 2
    # Patroni names its synchronous standby in a loop of its own, a few seconds after the members stream: wait for
    # it (up to 60 s), as an operator would, before asking for the switchover it must be the target of.
    local target="" tries=0
    while [ -z "$target" ] && [ "$tries" -lt 120 ]; do
      target=$($cli replica list --env ha --json | .venv/bin/python -c 'import json, sys
print(next((m["name"] for m in json.load(sys.stdin)["view"]["members"] if m["role"] == "sync_standby"), ""))') \
        || return 1
      [ -n "$target" ] || sleep 0.5
      tries=$((tries + 1))
    done
    [ -n "$target" ] || { echo "no synchronous standby after 60 s"; return 1; }
    $cli replica promote --env ha --name "$target" --yes || return 1
    sleep 2
  }
  switchover_with_writes() {
    local stop failures result=0
    stop=$(mktemp) failures=$(mktemp)
    rm -f "$stop"
    $cli psql --env ha -- -q -c 'CREATE TABLE IF NOT EXISTS demo_ticks (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())'
    ( while [ ! -e "$stop" ]; do
        $cli psql --env ha -- -q -c 'INSERT INTO demo_ticks DEFAULT VALUES' >/dev/null 2>&1 || echo x >>"$failures"
      done ) &
    local writer=$!
    switchover_to_sync_standby || result=$?
    touch "$stop"  # the writer stops whatever happened: a failed step must not leave it inserting forever
    wait "$writer" || true
    if [ "$result" -ne 0 ]; then
      rm -f "$stop" "$failures"
      return "$result"
    fi
    echo "writes went on: $($cli psql --env ha -- -At -c 'SELECT count(*) FROM demo_ticks') rows, $(wc -l <"$failures") insert(s) failed while the leader changed"
    rm -f "$stop" "$failures"
  }
  step -r "writes went on" "make db-promote-replica env=ha name=... (a Patroni switchover while a writer inserts)" switchover_with_writes
  step -r "members of" "make db-replicas env=ha" $cli replica list --env ha
  step -r "stopped" "make cluster-down env=ha" $cli cluster down --env ha
fi

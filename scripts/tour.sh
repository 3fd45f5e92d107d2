# The step runner of `make demo` (sourced by scripts/demo.sh; tests/unit/test_tour.py runs it on small scripts).
#
#   tour_start LOG            fold every step's output into LOG; an EXIT trap prints the summary and cleans up
#   part "Backups"            a heading; the summary table has one row per part
#   step [-x CODES] [-r REGEX] "make db-..." COMMAND...
#                             runs COMMAND in this shell (its variables stay set), output into LOG (and after
#                             it on the terminal with VERBOSE=1), then prints one line: mark, time, title, result. The
#                             result is the last line matching REGEX (default: the last line that is not a table
#                             rule). -x 1,2: exit codes the tour expects (shown, the tour goes on). Any other
#                             failure stops the tour: its last lines are shown, then the clean-up runs.
#   TOUR_DONE="..."           printed last when every step succeeded
#   skip_step "make db-..." REASON   a step this machine cannot run, shown as skipped with its reason
#   on_cleanup KEY COMMAND... / cleanup_done KEY
#                             what the EXIT trap undoes if the tour stops before KEY's own step undid it.
# The caller runs under `set -euo pipefail`; a failing command inside a step's function stops the tour there.

tour_start() {
  TOUR_LOG=$1
  TOUR_STARTED=$EPOCHREALTIME
  TOUR_VERBOSE=${VERBOSE:-0}
  TOUR_COLUMNS=${COLUMNS:-$( { [ -t 1 ] && tput cols 2>/dev/null; } || echo 120)}
  TOUR_CURRENT=""
  TOUR_PART=""
  TOUR_PARTS=()
  declare -gA TOUR_PART_TIME=() TOUR_PART_STEPS=() TOUR_PART_RESULT=() TOUR_PART_SKIPPED=() TOUR_CLEANUP=()
  TOUR_CLEANUP_ORDER=()
  mkdir -p "$(dirname "$TOUR_LOG")"
  : >"$TOUR_LOG"
  TOUR_OUT="$TOUR_LOG.step"
  # A failing step ends the shell while its output still goes to TOUR_OUT: the summary goes to the terminal.
  exec {TOUR_STDOUT}>&1 {TOUR_STDERR}>&2
  trap tour_finish EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

part() {
  TOUR_PART=$1
  TOUR_PARTS+=("$1")
  TOUR_PART_TIME[$1]=0.0
  TOUR_PART_STEPS[$1]=0
  TOUR_PART_RESULT[$1]=ok
  printf '\033[1m── %s\033[0m\n' "$1"
}

# A step this machine cannot run (a package is missing): one line saying why, counted in its part's summary.
skip_step() {
  local title=$1 reason=$2
  printf '\n== %s\nskipped: %s\n' "$title" "$reason" >>"$TOUR_LOG"
  title=${title%% (*}
  _tour_line "–" "" "${title%"${title##*[! ]}"}" "skipped: $reason"
  [ -z "$TOUR_PART" ] || TOUR_PART_SKIPPED[$TOUR_PART]=$((${TOUR_PART_SKIPPED[$TOUR_PART]:-0} + 1))
}

on_cleanup() {
  local key=$1
  shift
  [ -n "${TOUR_CLEANUP[$key]+set}" ] || TOUR_CLEANUP_ORDER+=("$key")
  TOUR_CLEANUP[$key]=$(printf '%q ' "$@")
}

cleanup_done() {
  unset "TOUR_CLEANUP[$1]"
}

# The result of a step: the last line matching its pattern, else the last line that says something; when that is a
# table's row, the table's title and its number of rows. Paths under this folder are shown relative to it.
_tour_result() {
  local pattern=$1 text picked=""
  text=$(sed -e 's/\x1b\[[0-9;]*m//g' -e "s#$PWD/##g" "$TOUR_OUT")
  [ -z "$pattern" ] || picked=$(grep -v -E '^[ \t]*(│|┃|┏|┡|└|├|╭|╰|━|─|═)' <<<"$text" | grep -E -- "$pattern" | tail -n 1)
  if [ -z "$picked" ]; then
    picked=$(awk '
      /^[ \t]*$/ { next }
      /^[ \t]*(┏|╭)/ { title = plain; rows = 0; last = ""; next }
      /^[ \t]*┡/ { rows = 0; next }
      /^[ \t]*(├|└|╰|┗|┣|╞|━|─|═)/ { next }
      /^[ \t]*(│|┃)/ { cell = $0; sub(/^[ \t]*(│|┃)[ \t]*/, "", cell)
                           if (cell !~ /^(│|┃)/) rows++
                           last = (title == "" ? "a table" : title) ": " rows " row" (rows == 1 ? "" : "s"); next }
      { plain = $0; last = $0 }
      END { print last }' <<<"$text")
  fi
  sed -E -e 's/^[ \t]*//' -e 's/^(development|staging|production): //' <<<"$picked"
}

_tour_line() {
  local mark=$1 elapsed=$2 title=$3 result=$4 line
  line=$(printf '  %s %6s  %s' "$mark" "$elapsed" "$title")
  [ -z "$result" ] || line="$line · $result"
  if [ "${#line}" -gt "$TOUR_COLUMNS" ]; then
    line="${line:0:$((TOUR_COLUMNS - 1))}…"
  fi
  printf '%s\n' "$line"
}

_tour_seconds() {
  # Tenths of a second from two $EPOCHREALTIME readings.
  local start=${1/[.,]/} end=${2/[.,]/}
  local tenths=$(((end - start) / 100000))
  printf '%d.%d' $((tenths / 10)) $((tenths % 10))
}

step() {
  local expected="0" pattern="" rc=0
  while [ $# -gt 0 ]; do
    case $1 in
      -x) expected="0,$2"; shift 2 ;;
      -r) pattern=$2; shift 2 ;;
      *) break ;;
    esac
  done
  local title=$1
  shift
  TOUR_CURRENT=$title
  TOUR_LOGGED=0
  TOUR_STEP_STARTED=$EPOCHREALTIME
  [ -t 1 ] && [ "$TOUR_VERBOSE" != 1 ] && printf '  … %s\r' "${title:0:$((TOUR_COLUMNS - 6))}"
  printf '\n== %s\n' "$title" >>"$TOUR_LOG"
  if [ "$expected" = 0 ]; then
    "$@" >"$TOUR_OUT" 2>&1
  else
    "$@" >"$TOUR_OUT" 2>&1 || rc=$?
  fi
  cat "$TOUR_OUT" >>"$TOUR_LOG"
  TOUR_LOGGED=1
  local elapsed result
  elapsed=$(_tour_seconds "$TOUR_STEP_STARTED" "$EPOCHREALTIME")
  result=$(_tour_result "$pattern")
  if [[ ",$expected," != *",$rc,"* ]]; then
    TOUR_STEP_RC=$rc
    return "$rc"
  fi
  [ "$rc" = 0 ] || result="exit $rc, as expected: $result"
  [ -t 1 ] && [ "$TOUR_VERBOSE" != 1 ] && printf '\033[K'
  [ "$TOUR_VERBOSE" != 1 ] || { printf '\n\033[1m== %s\033[0m\n' "$title"; cat "$TOUR_OUT"; }
  title=${title%% (*}
  _tour_line "✓" "${elapsed}s" "${title%"${title##*[! ]}"}" "$result"
  TOUR_CURRENT=""
  if [ -n "$TOUR_PART" ]; then
    TOUR_PART_STEPS[$TOUR_PART]=$((${TOUR_PART_STEPS[$TOUR_PART]} + 1))
    TOUR_PART_TIME[$TOUR_PART]=$(awk -v a="${TOUR_PART_TIME[$TOUR_PART]}" -v b="$elapsed" 'BEGIN { printf "%.1f", a + b }')
  fi
}

tour_finish() {
  local rc=$? key
  set +e
  exec 1>&"$TOUR_STDOUT" 2>&"$TOUR_STDERR"
  trap - EXIT INT TERM
  if [ -n "$TOUR_CURRENT" ]; then
    [ "$rc" != 0 ] || rc=1
    [ -z "${TOUR_STEP_RC:-}" ] || rc=$TOUR_STEP_RC
    [ -t 1 ] && [ "$TOUR_VERBOSE" != 1 ] && printf '\033[K'
    [ ! -f "$TOUR_OUT" ] || [ "${TOUR_LOGGED:-0}" = 1 ] || cat "$TOUR_OUT" >>"$TOUR_LOG"
    local how="failed (exit $rc)"
    [ "$rc" != 130 ] && [ "$rc" != 143 ] || how="interrupted (exit $rc)"
    _tour_line "✗" "$(_tour_seconds "$TOUR_STEP_STARTED" "$EPOCHREALTIME")s" "${TOUR_CURRENT%% (*}" "$how"
    if [ "$TOUR_VERBOSE" = 1 ]; then
      cat "$TOUR_OUT"
    else
      sed -e 's/^/      | /' "$TOUR_OUT" | tail -n 12
    fi
    [ -z "$TOUR_PART" ] || TOUR_PART_RESULT[$TOUR_PART]="${how%% (*}: ${TOUR_CURRENT%% (*}"
  elif [ "$rc" != 0 ]; then
    printf '  ✗ the tour stopped (exit %s) between steps\n' "$rc"
    [ -z "$TOUR_PART" ] || TOUR_PART_RESULT[$TOUR_PART]="stopped (exit $rc)"
  fi
  local undone=()
  for ((i = ${#TOUR_CLEANUP_ORDER[@]} - 1; i >= 0; i--)); do
    key=${TOUR_CLEANUP_ORDER[$i]}
    [ -n "${TOUR_CLEANUP[$key]+set}" ] || continue
    printf '\n== clean-up: %s\n' "$key" >>"$TOUR_LOG"
    eval "${TOUR_CLEANUP[$key]}" >>"$TOUR_LOG" 2>&1
    undone+=("$key")
  done
  [ ${#undone[@]} -eq 0 ] || printf '  cleaned up: %s\n' "${undone[*]}"
  rm -f "$TOUR_OUT"
  local name total=0 steps=0
  printf '\n%-40s %6s %8s  %s\n' "part" "steps" "time" "result"
  for name in "${TOUR_PARTS[@]}"; do
    local outcome=${TOUR_PART_RESULT[$name]}
    [ -z "${TOUR_PART_SKIPPED[$name]:-}" ] || outcome="$outcome, ${TOUR_PART_SKIPPED[$name]} skipped"
    printf '%-40s %6s %7ss  %s\n' "${name:0:40}" "${TOUR_PART_STEPS[$name]}" "${TOUR_PART_TIME[$name]}" "$outcome"
    steps=$((steps + ${TOUR_PART_STEPS[$name]}))
  done
  total=$(_tour_seconds "$TOUR_STARTED" "$EPOCHREALTIME")
  printf '%-40s %6s %7ss  %s\n' "the whole tour" "$steps" "$total" "$([ "$rc" = 0 ] && echo ok || echo "failed (exit $rc)")"
  printf '\nEach step'"'"'s output: %s (VERBOSE=1 shows it too).' "$TOUR_LOG"
  [ "$rc" != 0 ] || [ -z "${TOUR_DONE:-}" ] || printf ' %s' "$TOUR_DONE"
  printf '\n'
  exit "$rc"
}

# Performance tuning (issue 5): the runbook's Weekly Maintenance, Performance Tuning and Slow Queries, on the
# production data seeded above. Sourced by scripts/demo.sh (part, step, $cli).

part "Performance tuning"
heavy=$($cli psql --env production -- -X -A -t -c \
  "SELECT user_id FROM recipes GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
hot="SELECT * FROM recipes WHERE user_id = $heavy ORDER BY created_at DESC LIMIT 20"

hot_path() {
  for _ in $(seq 300); do echo "$hot;"; done | $cli psql --env production -- -X -q -o /dev/null
  echo "300 runs of: $hot"
}
step "The application's hot path, 300 times: user $heavy's latest recipes (pg_stat_statements records it)" hot_path

step -r "statistics since" "make db-slow-queries env=production limit=5" \
  $cli slow-queries --env production --limit 5

step -x 1 -r "index advice" "make db-analyze-table env=production table=recipes (exit 1: it found something)" \
  $cli analyze --env production --table recipes

step -r "execution" "make db-explain env=production query=\"$hot\"" $cli explain --env production "$hot"

step -r "created" "make db-create-index env=production table=recipes columns=user_id,created_at" \
  $cli index create --env production --table recipes --columns user_id,created_at

step -r "Index Scan|Sort|execution" "make db-explain env=production query=\"...\" (no sort any more)" \
  $cli explain --env production "$hot"

step "make db-remove-unused-indexes env=production dry-run=1" $cli index remove-unused --env production --dry-run

step -r "VACUUM" "make db-vacuum-analyze env=production table=recipes" \
  $cli vacuum-analyze --env production --table recipes

work_mem() {
  $cli config update --env staging work_mem 64MB
  $cli config show --env staging | grep -E "parameter|work_mem|max_connections"
}
step -r "in effect now" "make db-update-config env=staging param=work_mem value=64MB, then db-show-config" work_mem

step -r "recommended settings" "make db-recommend-config env=production" $cli config recommend --env production

# Performance tuning (issue 5): the runbook's Weekly Maintenance, Performance Tuning and Slow Queries, on the
# production data seeded above. Sourced by scripts/demo.sh (step, $cli).

heavy=$($cli psql --env production -- -X -A -t -c \
  "SELECT user_id FROM recipes GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
hot="SELECT * FROM recipes WHERE user_id = $heavy ORDER BY created_at DESC LIMIT 20"

step "The application's hot path, 300 times: user $heavy's latest recipes (pg_stat_statements records it)"
for _ in $(seq 300); do echo "$hot;"; done | $cli psql --env production -- -X -q -o /dev/null

step "make db-slow-queries env=production limit=5"
$cli slow-queries --env production --limit 5

step "make db-analyze-table env=production table=recipes   (exit 1: it found something)"
$cli analyze --env production --table recipes || true

step "make db-explain env=production query=\"$hot\""
$cli explain --env production "$hot"

step "make db-create-index env=production table=recipes columns=user_id,created_at"
$cli index create --env production --table recipes --columns user_id,created_at

step "make db-explain env=production query=\"$hot\"   (no sort any more)"
$cli explain --env production "$hot"

step "make db-remove-unused-indexes env=production dry-run=1"
$cli index remove-unused --env production --dry-run

step "make db-vacuum-analyze env=production table=recipes"
$cli vacuum-analyze --env production --table recipes

step "make db-update-config env=staging param=work_mem value=64MB, then db-show-config"
$cli config update --env staging work_mem 64MB
$cli config show --env staging | grep -E "parameter|work_mem|max_connections"

step "make db-recommend-config env=production"
$cli config recommend --env production

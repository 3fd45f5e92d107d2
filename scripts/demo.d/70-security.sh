# Security Management: the tool's own least-privilege roles, a user whose password never leaves this
# machine in clear, a grant that also covers future tables, audit logging, an audit report, the CIS check.
# Sourced by scripts/demo.sh (part, step, on_cleanup and $cli come from there).

part "Security"
step "cuisine-db security setup-roles --env production (backup, monitoring and operator roles)" \
  $cli security setup-roles --env production

create_reports() {
  $cli security drop-user --env production --username reports --yes >/dev/null 2>&1 || true
  demo_pw=$(mktemp)
  on_cleanup "password file" rm -f "$demo_pw"
  chmod 600 "$demo_pw"
  .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))' >"$demo_pw"
  $cli security create-user --env production --username reports --password-file "$demo_pw"
  rm -f "$demo_pw"
  cleanup_done "password file"
}
step -r "created role" "make db-create-user env=production username=reports (asked without echo by default; a file here)" \
  create_reports

step -r "granted" "make db-grant-permission env=production username=reports permission=SELECT tables=ALL" \
  $cli security grant --env production --username reports --permission SELECT --tables ALL

step "make db-permissions env=production username=reports" \
  $cli security permissions --env production --username reports

step -r "^production: " "make db-enable-audit env=production (the wheel's PostgreSQL 14 has no pgaudit: it falls back)" \
  $cli security enable-audit --env production --yes

audit_report() {
  $cli security grant --env production --username reports --permission SELECT --tables users
  $cli security audit-report --env production --start "$(date -u +%F)" --end "$(date -u +%F)" 2>&1
}
step -r "^wrote" "make db-audit-report env=production start=$(date -u +%F) end=$(date -u +%F)" audit_report

step -x 1 -r "finding" "make db-security-check env=production (exit 1 on high findings: each comes with its fix)" \
  $cli security check --env production

# PostgreSQL 14 is past its end of life (a finding above). The upgrade to 18 rehearsed on a restore of production's
# newest full backup in a scratch environment, production untouched: checked, and its downtime measured as the
# prediction for the real run (make db-upgrade env=production to=18; docs/upgrade.md).
rehearse_upgrade() {
  $cli postgres install 18
  $cli upgrade --env production --to 18 --method link --rehearse
}
step -r "predicted downtime" "make db-upgrade env=production to=18 rehearse=1 (the prediction; production untouched)" \
  rehearse_upgrade

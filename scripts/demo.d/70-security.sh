# Security Management: the tool's own least-privilege roles, a user whose password never leaves this
# machine in clear, a grant that also covers future tables, audit logging, an audit report, the CIS check.
# Sourced by scripts/demo.sh ($cli and step come from there).

step "cuisine-db security setup-roles --env production (backup, monitoring and operator roles for the tool)"
$cli security setup-roles --env production

step "make db-create-user env=production username=reports (asked without echo by default; a file here)"
$cli security drop-user --env production --username reports --yes >/dev/null 2>&1 || true
demo_pw=$(mktemp)
chmod 600 "$demo_pw"
.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))' > "$demo_pw"
$cli security create-user --env production --username reports --password-file "$demo_pw"
rm -f "$demo_pw"

step "make db-grant-permission env=production username=reports permission=SELECT tables=ALL"
$cli security grant --env production --username reports --permission SELECT --tables ALL

step "make db-permissions env=production username=reports"
$cli security permissions --env production --username reports

step "make db-enable-audit env=production (the wheel's PostgreSQL 14 has no pgaudit: it says what it falls back to)"
$cli security enable-audit --env production --yes

step "make db-audit-report env=production start=$(date -u +%F) end=$(date -u +%F)"
$cli security grant --env production --username reports --permission SELECT --tables users >/dev/null
$cli security audit-report --env production --start "$(date -u +%F)" --end "$(date -u +%F)" 2>&1 | tail -n 22

step "make db-security-check env=production (exit 1 on high findings: each comes with its fix)"
$cli security check --env production || echo "(exit $?: high findings above)"

"""Risky migration statements, found with PostgreSQL's own parser (pglast) before they reach a busy server.

In the spirit of squawk: each rule (`lint_rules.py`, `lint_transactions.py`) looks at one parsed statement with
what is known so far (target major, tables created earlier in the file, column types from earlier migrations) and
returns findings naming the lock, what it blocks, how long it lasts and the safe rewrite. Errors are statements
that fail at run time or destroy data the file does not name; a file may waive a rule with a reasoned
`-- lint:ignore RULE reason` line. The runner sets lock_timeout and retries, so no rule asks for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

import pglast
from pglast import ast

from cuisine_db.findings import Finding
from cuisine_db.migrations.files import MigrationFile
from cuisine_db.migrations.lint_context import DEFAULT_MAJOR, Context, learn_columns
from cuisine_db.migrations.lint_rules import RULES
from cuisine_db.migrations.lint_transactions import cannot_run_in_transaction, transaction_control, unclosed_transaction

ALL_RULES = (cannot_run_in_transaction, transaction_control, *RULES)
# Every check name a finding can carry, and so every name a waiver may give.
CHECKS = frozenset({
    "cannot-run-in-transaction", "transaction-control", "index-without-concurrently", "drop-index-without-concurrently",
    "reindex-without-concurrently", "detach-partition-without-concurrently", "constraint-validated-under-lock",
    "unique-constraint-builds-index", "validate-in-same-transaction", "add-column-rewrites-table",
    "add-column-not-null-without-default", "set-not-null-scans-table", "column-type-rewrites-table", "drops-data",
    "truncate-cascade", "rename-breaks-running-code", "rewrites-under-exclusive-lock", "does-not-parse",
})
_WAIVER = re.compile(r"^\s*--\s*lint:ignore\b(?P<rest>.*)$", re.MULTILINE)


def _parse(migration: MigrationFile) -> list[ast.Node]:
    return [raw.stmt for raw in pglast.parse_sql(migration.up.sql) if raw.stmt is not None]


def waivers(migration: MigrationFile, text: str | None = None) -> tuple[dict[str, str], list[Finding]]:
    """The file's `-- lint:ignore RULE reason` lines: {rule: reason}, and findings for malformed ones."""
    if text is None:
        text = migration.path.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    problems: list[Finding] = []
    subject = f"{migration.path.name}: -"
    for match in _WAIVER.finditer(text):
        rule, _, reason = match.group("rest").strip().partition(" ")
        reason = reason.strip()
        if rule not in CHECKS:
            problems.append(Finding("waiver-unknown-rule", "error", subject,
                                    f"'-- lint:ignore {rule}' names no lint rule",
                                    "use one of: " + ", ".join(sorted(CHECKS))))
        elif len(reason.split()) < 2:
            problems.append(Finding("waiver-without-reason", "error", subject,
                                    f"'-- lint:ignore {rule}' gives no reason",
                                    f"say why it is safe here: -- lint:ignore {rule} the table has 40 rows"))
        else:
            found[rule] = reason
    return found, problems


def lint(migration: MigrationFile, major: int = DEFAULT_MAJOR, earlier: Sequence[MigrationFile] = ()) -> list[Finding]:
    """Findings for a migration's up section on a server of `major`; earlier migrations give known column types.

    A waived finding stays visible at severity info, with its reason.
    """
    context = Context(migration, major=major, transactional=migration.up.transaction)
    for previous in earlier:
        try:
            learn_columns(context, _parse(previous))
        except pglast.parser.ParseError:
            continue
    try:
        parsed = _parse(migration)
    except pglast.parser.ParseError as exc:
        findings = [context.finding("does-not-parse", "error", "-", str(exc),
                                    "fix the syntax; the server would reject it too")]
    else:
        findings = []
        for stmt in parsed:
            findings.extend(finding for rule in ALL_RULES for finding in rule(stmt, context))
            context.remember(stmt)
        findings.extend(unclosed_transaction(context))
    granted, problems = waivers(migration)
    return [_waive(finding, granted) for finding in findings] + problems


def _waive(finding: Finding, granted: dict[str, str]) -> Finding:
    reason = granted.get(finding.check)
    if reason is None:
        return finding
    return replace(finding, severity="info", evidence=f"waived ({reason}): {finding.evidence}")


def lint_folder(migrations: Sequence[MigrationFile], chosen: Iterable[MigrationFile] | None = None,
                major: int = DEFAULT_MAJOR) -> list[Finding]:
    """Lint each chosen migration (default: all) knowing the migrations before it in version order."""
    ordered = sorted(migrations, key=lambda m: m.version)
    wanted = {m.version for m in (chosen if chosen is not None else ordered)}
    return [finding for index, migration in enumerate(ordered) if migration.version in wanted
            for finding in lint(migration, major, ordered[:index])]


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.severity in ("error", "critical")]

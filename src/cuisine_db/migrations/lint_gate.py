"""The rail between lint and `migrate up`: an unwaived error in a pending migration stops a protected environment."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cuisine_db.config import Environment
from cuisine_db.errors import RefusedError
from cuisine_db.findings import Finding
from cuisine_db.migrations.files import MigrationFile
from cuisine_db.migrations.lint import errors, lint_folder


def check_pending(files: Sequence[MigrationFile], pending: Sequence[MigrationFile], server_version: int,
                  env: Environment, *, force: bool, notify: Callable[[str], None]) -> list[Finding]:
    """Lint the pending migrations for the server's major, report every finding, refuse errors where protected."""
    findings = lint_folder(files, pending, major=server_version // 10000)
    for finding in findings:
        notify(f"{finding.severity}: {finding.subject}: {finding.check}: {finding.evidence} (fix: {finding.fix})")
    blocking = errors(findings)
    if blocking and env.protected and not force:
        places = ", ".join(sorted({f"{finding.subject} ({finding.check})" for finding in blocking}))
        raise RefusedError(
            f"{env.name} is protected and {len(blocking)} pending migration finding(s) are errors: {places}",
            hint="fix the file, or add '-- lint:ignore RULE reason' to it, or override once with force=1 (journaled)",
        )
    if blocking and force:
        notify(f"force: applying despite {len(blocking)} lint error(s)")
    return findings

"""db-verify-integrity, db-check-corruption and db-verify-tables as commands: each journaled with its findings, and
a finding fails the command (exit 1) after the caller has been shown the report."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError
from cuisine_db.ops.integrity.corruption import check_corruption
from cuisine_db.ops.integrity.db_verify import DEFAULT_JOBS, IntegrityReport, verify_integrity
from cuisine_db.ops.integrity.tasks import Progress
from cuisine_db.ops.journal import journaled

Show = Callable[[IntegrityReport], None]


def _fail(report: IntegrityReport, what: str) -> None:
    if report.problems:
        damaged = f"; damaged: {', '.join(d.relation for d in report.damaged)}" if report.damaged else ""
        raise FailedError(f"{what} found {len(report.problems)} problem(s) on {report.env}{damaged}",
                          hint="see the fix column" + (" and the repair commands above" if report.repair else ""))


def verify(settings: Settings, env: Environment, *, jobs: int = DEFAULT_JOBS, on_plan: Callable[[int], None] | None
           = None, on_progress: Progress | None = None, show: Show = lambda _: None) -> IntegrityReport:
    """make db-verify-integrity, journaled with its findings, damaged relations and what it checked: `show` gets the
    report before the journal line is written; a problem then fails the command."""
    with journaled(settings, env, "db-verify-integrity", {"jobs": jobs}) as entry:
        report = verify_integrity(settings, env, jobs=jobs, on_plan=on_plan, on_progress=on_progress)
        entry.details.update(findings=len(report.problems), damaged=[d.relation for d in report.damaged],
                             checked=report.checked)
        show(report)
        _fail(report, "db-verify-integrity")
    return report


def corruption(settings: Settings, env: Environment, *, tables: Sequence[str] | None = None,
               jobs: int = DEFAULT_JOBS, on_progress: Progress | None = None,
               show: Show = lambda _: None) -> IntegrityReport:
    """make db-check-corruption (`tables` None) or db-verify-tables, journaled with its findings and damaged
    relations: `show` gets the report before the journal line is written; a problem then fails the command."""
    command = "db-check-corruption" if tables is None else "db-verify-tables"
    arguments: dict[str, object] = {"jobs": jobs} if tables is None else {"tables": ",".join(tables), "jobs": jobs}
    with journaled(settings, env, command, arguments) as entry:
        report = check_corruption(settings, env, tables=tables, jobs=jobs, on_progress=on_progress)
        entry.details.update(findings=len(report.problems), damaged=[d.relation for d in report.damaged])
        show(report)
        _fail(report, command)
    return report

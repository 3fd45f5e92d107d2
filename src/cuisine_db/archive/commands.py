"""db-archive-data, archive restore and db-verify-archive as commands: each journaled whoever calls it, with the
archive-name rules and the verification verdict kept here rather than in the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cuisine_db.archive import archive_verify, catalog, request, service
from cuisine_db.archive import restore as restoring
from cuisine_db.archive.archive_verify import VerifyReport
from cuisine_db.archive.request import ArchiveRequest
from cuisine_db.archive.restore import RestoreReport
from cuisine_db.archive.service import ArchivePlan, ArchiveReport, Notify
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled


@dataclass(frozen=True, slots=True)
class ArchiveOutcome:
    """db-archive-data: the request as checked, the plan shown, and the run's report (None for a dry run)."""

    request: ArchiveRequest
    plan: ArchivePlan
    report: ArchiveReport | None


def archive_data(settings: Settings, env: Environment, *, table: str | None, older_than: str | None,
                 column: str | None = None, batch: int | None = None, pause: str | None = None, dry_run: bool = False,
                 yes: bool = False, ask: Ask | None = None, notify: Notify = lambda _: None,
                 show: Callable[[ArchivePlan], None] = lambda _: None) -> ArchiveOutcome:
    """make db-archive-data, journaled as `archive-data`: the request checked, the plan made and given to `show`
    (before any confirmation), then, unless `dry_run`, the run."""
    arguments = {"table": table, "older_than": older_than, "column": column, "batch_size": batch, "pause": pause,
                 "dry_run": dry_run}
    with journaled(settings, env, "archive-data", arguments) as entry:
        asked = request.make_request(table, older_than, column, batch, pause)
        plan = service.plan(settings, env, asked)
        if dry_run:
            entry.details.update(rows=plan.rows, pending=[p.name for p in plan.pending])
            show(plan)
            return ArchiveOutcome(asked, plan, None)
        show(plan)
        report = service.run(settings, env, asked, planned=plan, yes=yes, ask=ask, notify=notify)
        entry.details.update(archives=[a.name for a in report.archives], exported=report.exported,
                             deleted=report.deleted, kept=report.kept, abandoned=report.abandoned)
    return ArchiveOutcome(asked, plan, report)


def restore_archive(settings: Settings, env: Environment, archive: str | None, table: str | None = None, *,
                    yes: bool = False, ask: Ask | None = None, notify: Notify = lambda _: None,
                    trust_unsigned: bool = False) -> RestoreReport:
    """archive restore (restore=1), journaled as `archive-restore`: an unsigned archive is trusted only when named
    explicitly, never as `latest`."""
    with journaled(settings, env, "archive-restore", {"archive": archive, "table": table,
                                                      "trust_unsigned": trust_unsigned}) as entry:
        if archive is None or not archive.strip():
            raise UsageError("give the archive: archive=NAME (or archive=latest); make db-archives lists them")
        reference = archive.strip()
        if reference != "latest":
            catalog.parse_name(reference)
        elif trust_unsigned:
            raise UsageError("trust_unsigned=1 (--trust-unsigned) needs an archive named explicitly, never latest",
                             hint=f"make db-archives env={env.name} lists them")
        report = restoring.restore(settings, env, reference, table, yes=yes, ask=ask, notify=notify,
                                   trust_unsigned=trust_unsigned)
        entry.details.update(archive=report.archive, inserted=report.inserted, present=report.present)
    return report


def verify_archive(settings: Settings, env: Environment, reference: str,
                   show: Callable[[VerifyReport], None] = lambda _: None) -> VerifyReport:
    """make db-verify-archive, journaled as `verify-archive`: `show` gets the report before the journal line is
    written; a problem then fails the command (exit 1)."""
    with journaled(settings, env, "verify-archive", {"archive": reference}) as entry:
        report = archive_verify.verify(settings, env, reference)
        entry.details.update(archive=report.name, ok=report.ok, problems=report.problems)
        show(report)
        if not report.ok:
            raise FailedError(f"archive {report.name} failed verification: {report.problems[0]}",
                              hint="its rows may not be recoverable from it: keep the table's rows until this is fixed")
    return report

"""db-migrate, db-rollback and migrate accept-edit as commands: the runner's work, journaled whoever asks for it."""

from __future__ import annotations

from cuisine_db.config import Environment, Settings
from cuisine_db.migrations import runner
from cuisine_db.migrations.lint import errors as lint_errors
from cuisine_db.migrations.runner import Notify, RunResult
from cuisine_db.migrations.state import MigrationState
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled


def migrate_journaled(settings: Settings, env: Environment, *, dry_run: bool = False, lock_wait: float = 600,
                      notify: Notify = lambda _: None, force: bool = False) -> RunResult:
    """make db-migrate, journaled as `migrate` with the versions applied, the lint errors forced past and the
    findings waived."""
    with journaled(settings, env, "migrate", {"dry_run": dry_run, "force": force}) as entry:
        result = runner.migrate(settings, env, dry_run=dry_run, lock_wait=lock_wait, notify=notify, force=force)
        entry.details["applied"] = [step.version for step in result.steps]
        if force:
            entry.details["forced_past"] = [f"{f.subject}: {f.check}" for f in lint_errors(result.findings)]
        waived = [f"{f.subject}: {f.check}" for f in result.findings if f.evidence.startswith("waived (")]
        if waived:
            entry.details["waived"] = waived
    return result


def rollback_journaled(settings: Settings, env: Environment, *, steps: int | None = None, version: str | None = None,
                       dry_run: bool = False, lock_wait: float = 600, yes: bool = False, ask: Ask | None = None,
                       notify: Notify = lambda _: None) -> RunResult:
    """make db-rollback, journaled as `rollback` with the versions rolled back."""
    with journaled(settings, env, "rollback", {"steps": steps, "version": version, "dry_run": dry_run}) as entry:
        result = runner.rollback(settings, env, steps=steps, version=version, dry_run=dry_run, lock_wait=lock_wait,
                                 yes=yes, ask=ask, notify=notify)
        entry.details["rolled_back"] = [step.version for step in result.steps]
    return result


def accept_edit_journaled(settings: Settings, env: Environment, version: str, *, yes: bool = False,
                          ask: Ask | None = None) -> MigrationState:
    """migrate accept-edit, journaled."""
    with journaled(settings, env, "migrate accept-edit", {"version": version}):
        return runner.accept_edit(settings, env, version, yes=yes, ask=ask)

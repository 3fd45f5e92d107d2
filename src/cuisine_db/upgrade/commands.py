"""make db-upgrade as one entry point: it picks the in-place or the logical path, asks the protected-environment
confirmations (ops/confirmation) and journals each step, whoever calls it; a no-go fails it after `show`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled
from cuisine_db.upgrade.request import UpgradeRequest

if TYPE_CHECKING:
    from cuisine_db.upgrade.inplace import UpgradeReport
    from cuisine_db.upgrade.logical import LogicalReport
    from cuisine_db.upgrade.preflight import PreflightReport
    from cuisine_db.upgrade.rehearsal import RehearsalReport

Notify = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class UpgradeAsked:
    """What the operator asked for: an upgrade (`to`, `method`), or one of its separate steps."""

    to: int | None = None
    method: str | None = None
    check: bool = False
    rehearse: bool = False
    rehearsed: str | None = None
    rollback: bool = False
    finish: bool = False
    to_dsn: str | None = None
    identity_full: bool = False


@dataclass(frozen=True, slots=True)
class Concluded:
    """--rollback or --finish of the upgrade in progress (`logical`; `remote`: onto a server reached by dsn=)."""

    env: str
    step: str  # rollback or finish
    source: int
    target: int
    logical: bool
    remote: bool


if TYPE_CHECKING:
    # What a run gives `show`: the in-place run or its check, the logical run, the logical check's pre-flight, a
    # rehearsal, or a rollback/finish.
    Outcome = UpgradeReport | LogicalReport | PreflightReport | RehearsalReport | Concluded


@dataclass(frozen=True, slots=True)
class _Run:
    settings: Settings
    env: Environment
    asked: UpgradeAsked
    yes: bool
    ask: Ask | None
    notify: Notify
    show: Callable[[Outcome], None]
    show_preflight: Callable[[PreflightReport], None]

    def confirm(self, action: str) -> None:
        confirmation.require(self.env, action, yes=self.yes, ask=self.ask)

    def refuse_unasked(self) -> None:
        """Refused now rather than after a backup and a rehearsal: there is nobody to ask at the end."""
        if self.ask is None:
            confirmation.require(self.env, "upgrade", yes=self.yes, ask=None)


def upgrade(settings: Settings, env: Environment, asked: UpgradeAsked, *, yes: bool = False, ask: Ask | None = None,
            notify: Notify = lambda _: None, show: Callable[[Outcome], None] = lambda _: None,
            show_preflight: Callable[[PreflightReport], None] = lambda _: None) -> Outcome:
    """make db-upgrade: the pre-flight only (`check`), a rehearsal, the upgrade, or its rollback/finish; in place
    with pg_upgrade, or method=logical (also when a logical upgrade is in progress). `ask` None: no one to ask."""
    from cuisine_db.upgrade import logical_run

    if sum((asked.check, asked.rehearse, asked.rollback, asked.finish)) > 1:
        raise UsageError("--check, --rehearse, --rollback and --finish are separate steps: give one")
    run = _Run(settings, env, asked, yes, ask, notify, show, show_preflight)
    if (asked.method == "logical" or asked.to_dsn is not None or asked.identity_full
            or logical_run.in_progress(settings, env)):
        return _logical(run)
    if asked.rollback or asked.finish:
        if asked.to is not None or asked.method is not None:
            raise UsageError(f"--{'rollback' if asked.rollback else 'finish'} takes no to= or method=: it acts on the "
                             "upgrade in progress")
        return _conclude_inplace(run)
    if asked.rehearse:
        from cuisine_db.upgrade import validate

        return _rehearse(run, validate(env, asked.to, asked.method))
    return _inplace(run)


def _conclude_inplace(run: _Run) -> Concluded:
    from cuisine_db.upgrade import inplace

    step = "rollback" if run.asked.rollback else "finish"
    with journaled(run.settings, run.env, f"upgrade {step}", {}) as entry:
        run.confirm(f"{step} of the upgrade")
        done = (inplace.rollback if run.asked.rollback else inplace.finish)(run.settings, run.env, notify=run.notify)
        entry.details.update(source=done.source, target=done.target, method=done.method)
    concluded = Concluded(run.env.name, step, done.source, done.target, logical=False, remote=False)
    run.show(concluded)
    return concluded


def _inplace(run: _Run) -> UpgradeReport:
    from cuisine_db.upgrade import inplace

    asked = run.asked
    arguments = {"to": asked.to, "method": asked.method, "check": asked.check, "rehearsed": asked.rehearsed}
    with journaled(run.settings, run.env, "upgrade", arguments) as entry:
        if not asked.check:
            run.refuse_unasked()
        report = inplace.upgrade(run.settings, run.env, asked.to, asked.method, check_only=asked.check,
                                 rehearsed=asked.rehearsed, notify=run.notify, confirm=run.confirm)
        entry.details.update(source=report.source, target=report.target, method=report.method,
                             go=report.preflight.go if report.preflight else None,
                             downtime_seconds=report.downtime_seconds, backup=report.backup,
                             backup_after=report.backup_after, rehearsal=report.rehearsal,
                             point_of_no_return_passed=report.downtime_seconds is not None and not report.can_roll_back)
        run.show(report)
        if report.preflight is not None and not report.preflight.go:
            raise FailedError(f"pre-flight: no-go for {report.env} to PostgreSQL {report.target}; nothing was "
                              "changed", hint="fix the no-go rows above and run it again")
    return report


def _logical(run: _Run) -> Outcome:
    """method=logical, and --rollback/--finish of a logical upgrade in progress."""
    from cuisine_db.upgrade import logical, logical_remote, logical_run

    asked, env, settings = run.asked, run.env, run.settings
    remote = logical_remote.is_remote(env)
    if asked.rollback or asked.finish:
        if asked.to is not None or asked.method is not None or asked.to_dsn is not None:
            raise UsageError(f"--{'rollback' if asked.rollback else 'finish'} takes no to=, method= or to_dsn=: it "
                             "acts on the upgrade in progress")
        step = "rollback" if asked.rollback else "finish"
        with journaled(settings, env, f"upgrade {step}", {"method": "logical", "remote": remote}) as entry:
            run.confirm(f"{step} of the logical upgrade")
            done = logical_run.conclude(settings, env, rollback=asked.rollback, notify=run.notify)
            entry.details.update(source=done.source, target=done.target, method="logical")
        concluded = Concluded(env.name, step, done.source, done.target, logical=True, remote=remote)
        run.show(concluded)
        return concluded
    if asked.method != "logical":
        raise UsageError("to_dsn= and replica_identity_full= belong to method=logical" if asked.method is None or
                         not logical_run.in_progress(settings, env) else
                         f"{env.name} has a logical upgrade in progress: --rollback or --finish it first")
    if remote:
        return _logical_remote(run)
    if (asked.check or asked.rehearse) and asked.to_dsn is not None:
        raise UsageError("--check and --rehearse of method=logical make the new cluster locally: leave to_dsn out")
    if asked.check:
        return _logical_check(run)
    if asked.rehearse:
        source, target = logical.validate(settings, env, asked.to)
        return _rehearse(run, UpgradeRequest(env.name, source, target, "logical"))
    arguments = {"to": asked.to, "method": asked.method, "to_dsn": asked.to_dsn is not None,
                 "replica_identity_full": asked.identity_full, "rehearsed": asked.rehearsed}
    with journaled(settings, env, "upgrade", arguments) as entry:
        if asked.to_dsn is not None:
            logical.validate(settings, env, asked.to)
            logical_remote.check_local_source_target(asked.to_dsn)
        run.refuse_unasked()
        report = logical_run.upgrade(settings, env, asked.to, identity_full=asked.identity_full, notify=run.notify,
                                     confirm=run.confirm, rehearsed=asked.rehearsed, show_preflight=run.show_preflight)
        entry.details.update(source=report.source, target=report.target, method="logical",
                             downtime_seconds=report.downtime_seconds, identity_full=list(report.identity_full),
                             tables=len(report.tables), sequences=report.sequences, back_port=report.back_port,
                             rehearsal=report.rehearsal, backup_after=report.backup_after,
                             phases={phase.name: phase.seconds for phase in report.phases})
    run.show(report)
    return report


def _logical_remote(run: _Run) -> LogicalReport:
    """method=logical for an environment reached by dsn=: onto the server of to_dsn=."""
    from cuisine_db.upgrade import logical_remote_cutover

    asked, env = run.asked, run.env
    if asked.check or asked.rehearse or asked.rehearsed is not None:
        raise UsageError(f"{env.name} is a remote server: --check, --rehearse and --rehearsed of method=logical are "
                         "not built for it; the real run checks the source and the target before it changes anything")
    arguments = {"to": asked.to, "method": asked.method, "to_dsn": asked.to_dsn is not None,
                 "replica_identity_full": asked.identity_full}
    with journaled(run.settings, env, "upgrade", arguments) as entry:
        run.refuse_unasked()
        report = logical_remote_cutover.upgrade(run.settings, env, asked.to, asked.to_dsn,
                                                identity_full=asked.identity_full, notify=run.notify,
                                                confirm=run.confirm)
        entry.details.update(source=report.source, target=report.target, method="logical",
                             downtime_seconds=report.downtime_seconds, identity_full=list(report.identity_full),
                             tables=len(report.tables), sequences=report.sequences)
    run.show(report)
    return report


def _logical_check(run: _Run) -> PreflightReport:
    """method=logical check=1: its pre-flight table only; a no-go fails (exit 1) after the journal line."""
    from cuisine_db.upgrade import logical, logical_preflight

    env = run.env
    source, target = logical.validate(run.settings, env, run.asked.to)
    with journaled(run.settings, env, "upgrade", {"to": run.asked.to, "method": "logical", "check": True}) as entry:
        report = logical_preflight.run_preflight(run.settings, env, source, target,
                                                 identity_full=run.asked.identity_full, notify=run.notify)
        entry.details.update(source=source, target=target, method="logical", go=report.go)
    run.show(report)
    if not report.go:
        raise FailedError(f"pre-flight: no-go for {env.name} to PostgreSQL {target} with method=logical; nothing "
                          "was changed", hint="fix the no-go rows above and run it again")
    return report


def _rehearse(run: _Run, request: UpgradeRequest) -> RehearsalReport:
    """--rehearse: journaled as `upgrade rehearse`; problems fail it (exit 1) after the journal line."""
    from cuisine_db.upgrade import rehearsal

    env = run.env
    with journaled(run.settings, env, "upgrade rehearse", {"to": request.target, "method": request.method}) as entry:
        report = rehearsal.rehearse(run.settings, env, request, identity_full=run.asked.identity_full,
                                    notify=run.notify)
        entry.details.update(backup=report.backup, go=report.go,
                             predicted_downtime_seconds=report.predicted_downtime_seconds)
    run.show(report)
    if not report.go:
        raise FailedError(f"the rehearsal of {env.name}'s upgrade found problems; {env.name} was not touched")
    return report

"""`cuisine-db upgrade`: major-version upgrades of a local environment (make db-upgrade env=E to=18)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, confirm, environment, out, print_json, say, settings
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.ops.journal import journaled
from cuisine_db.upgrade.request import UpgradeRequest

if TYPE_CHECKING:
    from cuisine_db.config import Environment
    from cuisine_db.upgrade.inplace import UpgradeReport
    from cuisine_db.upgrade.logical import LogicalReport
    from cuisine_db.upgrade.preflight import PreflightReport

ToOption = Annotated[int | None, typer.Option("--to", help="The major version to upgrade to (15-18).")]
MethodOption = Annotated[str | None, typer.Option(
    "--method", help="clone|copy|link|swap|logical (default link): see docs/upgrade.md for downtime, disk and the "
                     "way back.")]
ToDsnOption = Annotated[str | None, typer.Option("--to-dsn", help="method=logical: the new server (an empty "
                                                 "database of the target major) for an environment reached by dsn=; "
                                                 "default a new local cluster.")]
IdentityOption = Annotated[bool, typer.Option("--replica-identity-full", help="method=logical: give tables without "
                                              "a primary key REPLICA IDENTITY FULL instead of refusing.")]


def upgrade(env: EnvOption = None, to: ToOption = None, method: MethodOption = None,
            check: Annotated[bool, typer.Option("--check", help="Only the pre-flight: nothing is changed.")] = False,
            rehearse: Annotated[bool, typer.Option("--rehearse", help="Upgrade a restore of the newest full backup "
                                                   "instead, check it and predict the downtime.")] = False,
            rehearsed: Annotated[str | None, typer.Option("--rehearsed", help="A backup whose passing rehearsal "
                                                          "stands for this run (protected environments).")] = None,
            rollback: Annotated[bool, typer.Option("--rollback", help="Return to the old major (before the point "
                                                   "of no return).")] = False,
            finish: Annotated[bool, typer.Option("--finish", help="Remove the old cluster: the end of the way "
                                                 "back.")] = False,
            to_dsn: ToDsnOption = None, replica_identity_full: IdentityOption = False,
            yes: YesOption = False, json: JsonOption = False) -> None:
    """Upgrade env's local cluster to PostgreSQL `to` with pg_upgrade: pre-flight table (exit 1 on no-go), a fresh
    verified full backup if needed, maintenance mode, the upgrade, extension updates, statistics."""
    from cuisine_db.upgrade import inplace, logical_run

    if sum((check, rehearse, rollback, finish)) > 1:
        raise UsageError("--check, --rehearse, --rollback and --finish are separate steps: give one")
    s = settings()
    chosen = environment(env)
    if method == "logical" or to_dsn is not None or replica_identity_full or logical_run.in_progress(s, chosen):
        _logical(chosen, to, method, to_dsn, replica_identity_full, check=check, rehearse=rehearse,
                 rollback=rollback, finish=finish, yes=yes, json=json, rehearsed=rehearsed)
        return
    if rollback or finish:
        if to is not None or method is not None:
            raise UsageError(f"--{'rollback' if rollback else 'finish'} takes no to= or method=: it acts on the "
                             "upgrade in progress")
        step = "rollback" if rollback else "finish"
        with journaled(s, chosen, f"upgrade {step}", {}) as entry:
            confirm(chosen, f"{step} of the upgrade", yes)
            done = (inplace.rollback if rollback else inplace.finish)(s, chosen, notify=say)
            entry.details.update(source=done.source, target=done.target, method=done.method)
        say(f"{chosen.name}: " + (f"back on PostgreSQL {done.source}; the upgrade is undone" if rollback else
                                  f"PostgreSQL {done.source}'s cluster removed; {chosen.name} stays on "
                                  f"{done.target}"))
        return
    if rehearse:
        from cuisine_db.upgrade import validate

        _rehearse(chosen, validate(chosen, to, method), json)
        return
    arguments = {"to": to, "method": method, "check": check, "rehearsed": rehearsed}
    with journaled(s, chosen, "upgrade", arguments) as entry:
        if not check and chosen.protected and not yes and not sys.stdin.isatty():
            # Refused now rather than after a backup and a rehearsal: there is nobody to ask at the end.
            confirm(chosen, "upgrade", yes)
        report = inplace.upgrade(s, chosen, to, method, check_only=check, rehearsed=rehearsed, notify=say,
                                 confirm=lambda action: confirm(chosen, action, yes))
        entry.details.update(source=report.source, target=report.target, method=report.method,
                             go=report.preflight.go if report.preflight else None,
                             downtime_seconds=report.downtime_seconds, backup=report.backup,
                             backup_after=report.backup_after, rehearsal=report.rehearsal,
                             point_of_no_return_passed=report.downtime_seconds is not None and not report.can_roll_back)
        if json:
            print_json(report)
        else:
            _render(report)
        if report.preflight is not None and not report.preflight.go:
            raise FailedError(f"pre-flight: no-go for {report.env} to PostgreSQL {report.target}; nothing was "
                              "changed", hint="fix the no-go rows above and run it again")


def _logical(env: Environment, to: int | None, method: str | None, to_dsn: str | None, identity_full: bool, *,
             check: bool, rehearse: bool, rollback: bool, finish: bool, yes: bool, json: bool,
             rehearsed: str | None = None) -> None:
    """method=logical, and --rollback/--finish of a logical upgrade in progress."""
    from cuisine_db.upgrade import logical, logical_remote, logical_run

    s = settings()
    remote = logical_remote.is_remote(env)
    if rollback or finish:
        if to is not None or method is not None or to_dsn is not None:
            raise UsageError(f"--{'rollback' if rollback else 'finish'} takes no to=, method= or to_dsn=: it acts on "
                             "the upgrade in progress")
        step = "rollback" if rollback else "finish"
        with journaled(s, env, f"upgrade {step}", {"method": "logical", "remote": remote}) as entry:
            confirm(env, f"{step} of the logical upgrade", yes)
            done = logical_run.conclude(s, env, rollback=rollback, notify=say)
            entry.details.update(source=done.source, target=done.target, method="logical")
        gone = "the reverse replication is removed" if remote else f"PostgreSQL {done.source}'s cluster removed"
        say(f"{env.name}: " + (f"back on PostgreSQL {done.source}" if rollback else
                               f"{gone}; {env.name} stays on {done.target}"))
        return
    if method != "logical":
        raise UsageError("to_dsn= and replica_identity_full= belong to method=logical" if method is None or
                         not logical_run.in_progress(s, env) else
                         f"{env.name} has a logical upgrade in progress: --rollback or --finish it first")
    if remote:
        _logical_remote(env, to, method, to_dsn, identity_full, check=check or rehearse or rehearsed is not None,
                        yes=yes, json=json)
        return
    if (check or rehearse) and to_dsn is not None:
        raise UsageError("--check and --rehearse of method=logical make the new cluster locally: leave to_dsn out")
    if check:
        _logical_check(env, to, identity_full, json)
        return
    if rehearse:
        source, target = logical.validate(s, env, to)
        _rehearse(env, UpgradeRequest(env.name, source, target, "logical"), json, identity_full=identity_full)
        return
    arguments = {"to": to, "method": method, "to_dsn": to_dsn is not None, "replica_identity_full": identity_full,
                 "rehearsed": rehearsed}
    with journaled(s, env, "upgrade", arguments) as entry:
        if to_dsn is not None:
            logical.validate(s, env, to)
            logical_remote.check_local_source_target(to_dsn)
        if env.protected and not yes and not sys.stdin.isatty():
            confirm(env, "upgrade", yes)
        report = logical_run.upgrade(s, env, to, identity_full=identity_full, notify=say,
                                         confirm=lambda action: confirm(env, action, yes), rehearsed=rehearsed,
                                         show_preflight=(lambda _: None) if json else _render_preflight)
        entry.details.update(source=report.source, target=report.target, method="logical",
                             downtime_seconds=report.downtime_seconds, identity_full=list(report.identity_full),
                             tables=len(report.tables), sequences=report.sequences, back_port=report.back_port,
                             rehearsal=report.rehearsal, backup_after=report.backup_after,
                             phases={phase.name: phase.seconds for phase in report.phases})
    _show_logical(report, json)


def _logical_remote(env: Environment, to: int | None, method: str | None, to_dsn: str | None, identity_full: bool,
                    *, check: bool, yes: bool, json: bool) -> None:
    """method=logical for an environment reached by dsn=: onto the server of to_dsn=."""
    from cuisine_db.upgrade import logical_remote_cutover

    s = settings()
    if check:
        raise UsageError(f"{env.name} is a remote server: --check, --rehearse and --rehearsed of method=logical are "
                         "not built for it; the real run checks the source and the target before it changes anything")
    arguments = {"to": to, "method": method, "to_dsn": to_dsn is not None, "replica_identity_full": identity_full}
    with journaled(s, env, "upgrade", arguments) as entry:
        if env.protected and not yes and not sys.stdin.isatty():
            confirm(env, "upgrade", yes)
        report = logical_remote_cutover.upgrade(s, env, to, to_dsn, identity_full=identity_full, notify=say,
                                                confirm=lambda action: confirm(env, action, yes))
        entry.details.update(source=report.source, target=report.target, method="logical",
                             downtime_seconds=report.downtime_seconds, identity_full=list(report.identity_full),
                             tables=len(report.tables), sequences=report.sequences)
    _show_logical(report, json)


def _show_logical(report: LogicalReport, json: bool) -> None:
    if json:
        print_json(report)
        return
    out.print(f"upgraded {report.env} to PostgreSQL {report.target} with method=logical: write downtime "
              f"{report.downtime_seconds:.1f}s; {len(report.tables)} tables identical, {report.sequences} sequences "
              "moved ahead")
    for phase in report.phases:
        out.print(f"  {phase.name}: {phase.seconds:.2f}s" + ("" if phase.writes_blocked else " (writes on)"),
                  markup=False)
    for note in report.notes:
        out.print(note, markup=False)


def _logical_check(env: Environment, to: int | None, identity_full: bool, json: bool) -> None:
    """method=logical check=1: its pre-flight table only; exit 1 on no-go."""
    from cuisine_db.upgrade import logical, logical_preflight

    s = settings()
    source, target = logical.validate(s, env, to)
    with journaled(s, env, "upgrade", {"to": to, "method": "logical", "check": True}) as entry:
        report = logical_preflight.run_preflight(s, env, source, target, identity_full=identity_full, notify=say)
        entry.details.update(source=source, target=target, method="logical", go=report.go)
    if json:
        print_json({"preflight": report, "notes": ["pre-flight only: nothing was changed"]})
    else:
        _render_preflight(report)
    if not report.go:
        raise FailedError(f"pre-flight: no-go for {env.name} to PostgreSQL {target} with method=logical; nothing "
                          "was changed", hint="fix the no-go rows above and run it again")


def _rehearse(env: Environment, request: UpgradeRequest, json: bool, *, identity_full: bool = False) -> None:
    from cuisine_db.upgrade import rehearsal

    s = settings()
    with journaled(s, env, "upgrade rehearse", {"to": request.target, "method": request.method}) as entry:
        report = rehearsal.rehearse(s, env, request, identity_full=identity_full, notify=say)
        entry.details.update(backup=report.backup, go=report.go,
                             predicted_downtime_seconds=report.predicted_downtime_seconds)
    if json:
        print_json(report)
    else:
        out.print(f"[bold]rehearsal of {env.name} PostgreSQL {report.source} → {report.target}, "
                  f"method={report.method}[/] on {report.backup} (restored, upgraded, removed)")
        if report.method == "logical":
            out.print(f"predicted write downtime: {report.predicted_downtime_seconds:.1f}s (the cutover: maintenance "
                      f"mode on to off); the rehearsal took {report.total_seconds:.1f}s (copy and catch-up included)")
        else:
            out.print(f"predicted downtime: {report.predicted_downtime_seconds:.1f}s (stop to maintenance mode off); "
                      f"full statistics {report.statistics_seconds:.1f}s later; the rehearsal took "
                      f"{report.total_seconds:.1f}s")
        out.print(f"amcheck: {len(report.amcheck_problems)} problem(s); row counts: "
                  f"{len(report.row_count_differences)} difference(s); migrations missing: "
                  f"{len(report.migrations_missing)}")
        out.print(f"plans: {report.plans_compared} compared, {report.plans_skipped} with parameters skipped, "
                  f"{len(report.plan_changes)} changed cost by 2x or more")
        for change in report.plan_changes:
            out.print(f"  {change.cost_before:.0f} → {change.cost_after:.0f}: {change.query[:100]}", markup=False)
        for line in (*report.amcheck_problems, *report.row_count_differences, *report.migrations_missing):
            out.print(f"  {line}", markup=False)
    if not report.go:
        raise FailedError(f"the rehearsal of {env.name}'s upgrade found problems; {env.name} was not touched")


def _render_preflight(checks: PreflightReport) -> None:
    from rich.table import Table

    table = Table(title=f"pre-flight: {checks.env} PostgreSQL {checks.old_version} → {checks.new_version}, "
                        f"method={checks.method}")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for row in checks.rows:
        style = {"go": "green", "no-go": "bold red", "note": "yellow"}[row.status]
        table.add_row(row.check, f"[{style}]{row.status}[/]", row.detail, row.fix)
    out.print(table)
    out.print(f"[bold]{'GO' if checks.go else 'NO-GO'}[/]")


def _render(report: UpgradeReport) -> None:
    if report.preflight is not None:
        _render_preflight(report.preflight)
    if report.downtime_seconds is not None:
        out.print(f"upgraded {report.env} to PostgreSQL {report.target} with {report.method}: downtime "
                  f"{report.downtime_seconds:.1f}s; full statistics {report.statistics_seconds:.1f}s later")
        for line in (*report.extensions_updated, *report.reindexed):
            out.print(f"  {line}", markup=False)
    if report.backup is not None:
        out.print(f"full backup before the upgrade (the way back): {report.backup}", markup=False)
    if report.backup_after is not None:
        out.print(f"first full backup of PostgreSQL {report.target}: {report.backup_after}", markup=False)
    for note in report.notes:
        out.print(note, markup=False)

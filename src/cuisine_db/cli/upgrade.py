"""`cuisine-db upgrade`: major-version upgrades of a local environment (make db-upgrade env=E to=18)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, asker, environment, out, print_json, say, settings

if TYPE_CHECKING:
    from cuisine_db.upgrade.commands import Outcome
    from cuisine_db.upgrade.inplace import UpgradeReport
    from cuisine_db.upgrade.logical import LogicalReport
    from cuisine_db.upgrade.preflight import PreflightReport
    from cuisine_db.upgrade.rehearsal import RehearsalReport

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
    from cuisine_db.upgrade import commands

    chosen = environment(env)
    asked = commands.UpgradeAsked(to=to, method=method, check=check, rehearse=rehearse, rehearsed=rehearsed,
                                  rollback=rollback, finish=finish, to_dsn=to_dsn,
                                  identity_full=replica_identity_full)
    commands.upgrade(settings(), chosen, asked, yes=yes, ask=asker(chosen), notify=say,
                     show=lambda done: _show(done, json),
                     show_preflight=(lambda _: None) if json else _render_preflight)


def _show(done: Outcome, json: bool) -> None:
    """Whatever the upgrade did, as the operator asked to see it."""
    from cuisine_db.upgrade.commands import Concluded
    from cuisine_db.upgrade.inplace import UpgradeReport
    from cuisine_db.upgrade.preflight import PreflightReport
    from cuisine_db.upgrade.rehearsal import RehearsalReport

    if isinstance(done, Concluded):
        if done.logical:
            gone = ("the reverse replication is removed" if done.remote
                    else f"PostgreSQL {done.source}'s cluster removed")
            say(f"{done.env}: " + (f"back on PostgreSQL {done.source}" if done.step == "rollback" else
                                   f"{gone}; {done.env} stays on {done.target}"))
        else:
            say(f"{done.env}: " + (f"back on PostgreSQL {done.source}; the upgrade is undone" if done.step == "rollback"
                                   else f"PostgreSQL {done.source}'s cluster removed; {done.env} stays on "
                                        f"{done.target}"))
    elif isinstance(done, UpgradeReport):
        if json:
            print_json(done)
        else:
            _render(done)
    elif isinstance(done, PreflightReport):
        if json:
            print_json({"preflight": done, "notes": ["pre-flight only: nothing was changed"]})
        else:
            _render_preflight(done)
    elif isinstance(done, RehearsalReport):
        _show_rehearsal(done, json)
    else:
        _show_logical(done, json)


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


def _show_rehearsal(report: RehearsalReport, json: bool) -> None:
    if json:
        print_json(report)
    else:
        out.print(f"[bold]rehearsal of {report.env} PostgreSQL {report.source} → {report.target}, "
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

"""`cuisine-db analyze`, `cuisine-db index create|remove-unused` and `cuisine-db vacuum-analyze`: the runbook's
weekly index maintenance, index management and VACUUM ANALYZE."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cuisine_db.cli.common import (
    EnvOption,
    JsonOption,
    YesOption,
    asker,
    environment,
    out,
    print_json,
    say,
    settings,
)
from cuisine_db.cli.render import MarkdownOption, OverwriteOption, check_output, show_findings
from cuisine_db.errors import EXIT_FINDINGS
from cuisine_db.findings import SEVERITIES
from cuisine_db.humanize import size as human

if TYPE_CHECKING:
    from cuisine_db.diagnose.vacuum import Maintenance
# The services (and pglast) are imported by the commands that use them: every other command starts faster.

app = typer.Typer(help="Index management: create concurrently, remove unused.", no_args_is_help=True)

MinDaysOption = Annotated[float | None, typer.Option(
    "--min-days", min=0, help="Days the usage statistics must cover before an index counts as unused "
                              "(default: the environment's unused_index_min_days, 7).")]


def analyze(
    env: EnvOption = None,
    table: Annotated[str | None, typer.Option("--table", "-t", help="Only this table (db-analyze-table).")] = None,
    method: Annotated[str, typer.Option("--method", help="Index advice: auto (hypopg where installed), hypopg, "
                                                         "or rules.")] = "auto",
    min_days: MinDaysOption = None,
    markdown: MarkdownOption = None,
    json: JsonOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Index and table analysis: unused, duplicate, overlapping, invalid indexes, unindexed foreign keys,
    sequential-scan-heavy tables, bloat, stale statistics, and recommended indexes. Exit 1 on warnings."""
    from cuisine_db.diagnose.analysis import analyze as analyze_indexes

    chosen = environment(env)
    check_output(markdown, overwrite)
    report = analyze_indexes(settings(), chosen, table, method=method, min_days=min_days)
    scope = f"table {report.table}" if report.table else "all tables"
    if json:
        print_json(report)
    else:
        say(f"{chosen.name}, {scope}: {report.stats_window}; index advice: {report.advice_method or 'none'}")
        show_findings(report.findings, title=f"index analysis of {chosen.name} ({scope})", markdown=markdown,
                      clean="no problems found", overwrite=overwrite)
        for note in report.notes:
            say(f"note: {note}")
    if any(SEVERITIES.index(f.severity) >= SEVERITIES.index("warning") for f in report.findings):
        raise typer.Exit(EXIT_FINDINGS)


@app.command("create")
def create(
    table: Annotated[str, typer.Option("--table", "-t", help="The table, e.g. recipes or public.recipes.")],
    columns: Annotated[str, typer.Option("--columns", "-c", help="Comma-separated columns, e.g. user_id,created_at.")],
    env: EnvOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Index name (default: <table>_<columns>_idx).")] = None,
    lock_timeout: Annotated[str | None, typer.Option("--lock-timeout", help="How long to wait for each lock, e.g. "
                                                     "1min (default: the environment's lock_timeout).")] = None,
    timeout: Annotated[str, typer.Option("--timeout", help="Statement timeout for the build, e.g. 2h.")] = "6h",
    json: JsonOption = False,
) -> None:
    """CREATE INDEX CONCURRENTLY with lock and statement timeouts and progress; a failed build leaves nothing."""
    from cuisine_db.diagnose.index_changes import create_index

    chosen = environment(env)
    build = create_index(settings(), chosen, table, columns, name=name, lock_timeout=lock_timeout, timeout=timeout,
                         notify=say)
    if json:
        print_json(build)
    elif build.created:
        say(f"{chosen.name}: created {build.index} on {build.table} ({', '.join(build.columns)}), "
            f"{human(build.bytes)}, in {build.seconds:.1f}s")
        out.print(escape(build.definition))
    else:
        say(f"{chosen.name}: {build.index} already serves {build.table} ({', '.join(build.columns)}); nothing done")


@app.command("remove-unused")
def remove_unused(
    env: EnvOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be dropped and why; drop nothing."
                                          )] = False,
    min_days: MinDaysOption = None,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """DROP INDEX CONCURRENTLY every index unused while the statistics were collected, never one backing a primary
    key, unique or exclusion constraint, a foreign key's lookups or the replica identity. Definitions are kept in
    the journal."""
    from cuisine_db.diagnose.index_changes import RemovalPlan
    from cuisine_db.diagnose.index_changes import remove_unused as removing

    chosen = environment(env)

    def show(plan: RemovalPlan) -> None:
        if json:
            return
        say(f"{chosen.name}: {plan.stats_window}")
        if plan.indexes:
            table = Table("index", "table", "size", "why it is unused", "definition (kept in the journal)",
                          title=f"unused indexes on {chosen.name}")
            for item in plan.indexes:
                table.add_row(escape(item.index), escape(item.table), human(item.bytes), escape(item.reason),
                              escape(item.definition))
            out.print(table)

    run = removing(settings(), chosen, min_days=min_days, dry_run=dry_run, yes=yes, ask=asker(chosen), show=show,
                   notify=say)
    plan, done = run.plan, run.done
    if done is None:
        if json:
            print_json(plan)
        elif not plan.indexes:
            say("no unused indexes: nothing to do")
        else:
            say(f"dry run: {len(plan.indexes)} index(es) would be dropped; nothing was changed"
                + ("" if plan.long_enough else " (and the statistics are still too recent to drop them)"))
        return
    if json:
        print_json(done)
    else:
        dropped = [i for i in done if i.outcome == "dropped"]
        say(f"{chosen.name}: dropped {len(dropped)} index(es), {human(sum(i.bytes for i in dropped))} freed; "
            "their definitions are in the journal")


def _ago(moment: datetime | None, kind: str, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago ({kind})"
    return f"{max(seconds, 0):.0f} s ago ({kind})"


def _state(state: Maintenance) -> tuple[str, str, str]:
    vacuum = _ago(*state.latest("vacuum"), state.now)
    analyzed = _ago(*state.latest("analyze"), state.now)
    rows = f"{state.live_rows:,} live, {state.dead_rows:,} dead, {state.changed_since_analyze:,} changed since analyze"
    return vacuum, analyzed, rows


def vacuum_analyze(
    table: Annotated[str, typer.Option("--table", "-t", help="Table(s), comma-separated.")],
    env: EnvOption = None,
    json: JsonOption = False,
) -> None:
    """VACUUM (ANALYZE) the table(s): the runbook's fix for stale statistics; shows the last runs before and after."""
    from cuisine_db.diagnose.vacuum import vacuum_analyze as run_vacuum

    chosen = environment(env)
    done = run_vacuum(settings(), chosen, table, notify=say)
    if json:
        print_json(done)
        return
    view = Table("table", "", "last vacuum", "last analyze", "rows", title=f"VACUUM (ANALYZE) on {chosen.name}")
    for item in done:
        view.add_row(escape(item.table), "before", *map(escape, _state(item.before)))
        view.add_row("", f"after ({item.seconds:.1f}s)", *map(escape, _state(item.after)))
    out.print(view)

"""`cuisine-db integrity verify|corruption|tables`: db-verify-integrity, db-check-corruption, db-verify-tables."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

from cuisine_db.cli.common import EnvOption, JsonOption, environment, err, out, print_json, say, settings
from cuisine_db.cli.render import (
    MarkdownOption,
    OverwriteOption,
    check_output,
    findings_markdown,
    show_findings,
    write_output,
)
from cuisine_db.ops.integrity import DEFAULT_JOBS, IntegrityReport, commands
from cuisine_db.ops.integrity.catalog import parse_table_names

app = typer.Typer(help="Integrity and corruption checks (the runbook's Disaster Recovery).", no_args_is_help=True)

JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=1, max=64,
                                         help="Connections to check with in parallel.")]

PlanHook = Callable[[int], None]
ProgressHook = Callable[[int, int, str], None]


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[tuple[PlanHook | None, ProgressHook | None, Callable[[], None]]]:
    """A progress bar over pages checked, on a terminal only (never in --json output or logs); the third hook takes
    it away (before the report is shown)."""
    if not enabled or not sys.stderr.isatty():
        yield None, None, lambda: None
        return
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                   TimeElapsedColumn(), console=err, transient=True)
    task = bar.add_task(label, total=None)

    def planned(total: int) -> None:
        bar.update(task, total=total)

    def advanced(done: int, total: int, what: str) -> None:
        bar.update(task, completed=done, total=total, description=f"{label}: {what}"[:70])

    with bar:
        yield planned, advanced, bar.stop


def _render(report: IntegrityReport, title: str, json: bool, markdown: Path | None, clean: str,
            overwrite: bool) -> None:
    for note in report.notes:
        say(note)
    if json:
        print_json({**{name: getattr(report, name) for name in IntegrityReport.__slots__}, "ok": report.ok})
        if markdown is not None:
            write_output(markdown, findings_markdown(report.findings, title), overwrite=overwrite)
        return
    show_findings(report.findings, title=title, markdown=markdown, clean=clean, overwrite=overwrite)
    if report.findings and report.ok:
        say(f"{clean}: {len(report.findings)} difference(s) from the newest backup that writes since explain "
            "(info, above)")
    checked = ", ".join(f"{count} {what}" for what, count in report.checked.items())
    say(f"checked {checked} on {report.env} (PostgreSQL {report.server_version}) with {report.jobs} connection(s) "
        f"in {report.seconds:.1f}s")
    if report.repair:
        out.print("\n[bold]Repair, in this order:[/]")
        for command in report.repair:
            out.print(f"  {command}", markup=False)


def _shown(done: Callable[[], None], title: str, json: bool, markdown: Path | None, clean: str,
           overwrite: bool) -> Callable[[IntegrityReport], None]:
    """The report rendered once the progress bar is gone."""
    def show(report: IntegrityReport) -> None:
        done()
        _render(report, title, json, markdown, clean, overwrite)
    return show


@app.command("verify")
def verify(env: EnvOption = None, jobs: JobsOption = DEFAULT_JOBS, json: JsonOption = False,
           markdown: MarkdownOption = None, overwrite: OverwriteOption = False) -> None:
    """amcheck on every table and B-tree index, checksums, collations, constraints, sequences, invalid indexes;
    exit 1 on any finding (make db-verify-integrity)."""
    s = settings()
    chosen = environment(env)
    check_output(markdown, overwrite)
    with _progress(not json, "verifying") as (on_plan, on_progress, done):
        commands.verify(s, chosen, jobs=jobs, on_plan=on_plan, on_progress=on_progress,
                        show=_shown(done, f"integrity of {chosen.name}", json, markdown, "no problems found",
                                    overwrite))


@app.command("corruption")
def corruption(env: EnvOption = None, jobs: JobsOption = DEFAULT_JOBS, json: JsonOption = False,
               markdown: MarkdownOption = None, overwrite: OverwriteOption = False) -> None:
    """pg_amcheck on every relation plus a read of every other page; names damaged tables and indexes with the
    exact repair commands; exit 1 on any (make db-check-corruption)."""
    s = settings()
    chosen = environment(env)
    check_output(markdown, overwrite)
    if not json:
        say(f"{chosen.name}: running pg_amcheck (heap, TOAST, B-tree indexes with heapallindexed) and reading "
            "the pages it does not read")
    with _progress(not json, "reading other pages") as (_, on_progress, done):
        commands.corruption(s, chosen, jobs=jobs, on_progress=on_progress,
                            show=_shown(done, f"corruption on {chosen.name}", json, markdown,
                                        "no damaged relation found", overwrite))


@app.command("tables")
def tables(
    names: Annotated[str | None, typer.Option("--tables", "-t", help="Comma-separated tables: users,recipes.")] = None,
    env: EnvOption = None, jobs: JobsOption = DEFAULT_JOBS, json: JsonOption = False,
    markdown: MarkdownOption = None, overwrite: OverwriteOption = False,
) -> None:
    """The corruption checks limited to some tables, plus their constraints, foreign keys, sequences and indexes;
    exit 2 on an unknown table, 1 on any finding (make db-verify-tables tables=a,b)."""
    s = settings()
    chosen = environment(env)
    wanted = parse_table_names(names or "")
    check_output(markdown, overwrite)
    with _progress(not json, "reading other pages") as (_, on_progress, done):
        commands.corruption(s, chosen, tables=wanted, jobs=jobs, on_progress=on_progress,
                            show=_shown(done, f"tables {', '.join(wanted)} on {chosen.name}", json, markdown,
                                        "no problems found", overwrite))

"""`cuisine-db archive ...` (make db-archive-data, db-archives, db-verify-archive): old rows out and back."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cuisine_db.archive import catalog, commands, service
from cuisine_db.archive.archive_verify import VerifyReport
from cuisine_db.backup.manifest import VERIFICATION
from cuisine_db.cli.common import (
    EnvOption,
    JsonOption,
    YesOption,
    asker,
    environment,
    out,
    print_json,
    required,
    say,
    settings,
)
from cuisine_db.cli.render import check_text, show_damage, size

app = typer.Typer(help="Archive old rows to the backup repository (and back); list and verify archives.",
                  no_args_is_help=True)

TableOption = Annotated[str | None, typer.Option("--table", help="The table: executions or public.executions.")]


def _plan_lines(plan: service.ArchivePlan) -> list[str]:
    lines = [f"{plan.env}: {plan.table} rows with {plan.column} ({plan.column_type}) before "
             f"{plan.cutoff:%Y-%m-%d %H:%M:%S %Z} (older than {plan.older_than}): {plan.rows:,}"
             + (f", from {plan.oldest} to {plan.newest}" if plan.rows else "")]
    for pending in plan.pending:
        lines.append(f"  {pending.name} ({pending.rows or 0:,} rows) was interrupted while deleting: the run "
                     "finishes it first")
    lines.append(f"  archived to {plan.repository}, then deleted by primary key ({', '.join(plan.primary_key)}) in "
                 "batches")
    return lines


@app.command("create")
def create(
    env: EnvOption = None,
    table: TableOption = None,
    older_than: Annotated[str | None, typer.Option("--older-than", help="Age of the rows: 365d, 52w, 36h.")] = None,
    column: Annotated[str | None, typer.Option("--column", help="The timestamp column that dates a row (default: "
                                                                "started_at for executions, else created_at).")
                      ] = None,
    batch: Annotated[int | None, typer.Option("--batch-size", help="Rows per delete transaction (default 1000).")
                     ] = None,
    pause: Annotated[str | None, typer.Option("--pause", help="Rest between delete batches, e.g. 200ms.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be archived; write nothing.")] = False,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """Archive a table's old rows to the repository, check the archive, then delete them in short batches."""
    chosen = environment(env)

    def show(plan: service.ArchivePlan) -> None:
        if not dry_run:
            for line in _plan_lines(plan):
                say(line)
        elif json:
            print_json(plan)
        else:
            for line in _plan_lines(plan):
                out.print(line)
            say("dry run: nothing was written or deleted")

    done = commands.archive_data(settings(), chosen, table=table, older_than=older_than, column=column, batch=batch,
                                 pause=pause, dry_run=dry_run, yes=yes, ask=asker(chosen), notify=say, show=show)
    report = done.report
    if report is None:
        return
    if json:
        print_json(report)
        return
    if not report.archives:
        out.print(f"{report.env}: no rows of {report.table} are older than {done.request.older_than}: nothing to "
                  "archive")
        return
    for item in report.archives:
        how = "finished (interrupted earlier)" if item.resumed else "archived"
        line = (f"{item.name}: {how}: {item.rows:,} rows of {report.table}, {size(item.size)} stored; deleted "
                f"{item.deleted:,} in {item.batches} batches")
        if item.gone:
            line += f", {item.gone:,} were already gone"
        if item.kept:
            line += f"; [yellow]{item.kept:,} kept[/] (changed or referenced since the export: the table's newer rows"\
                    " stay, the archive holds the exported ones)"
        out.print(line)
    say(f"{report.env}: done in {report.seconds:.1f}s; make db-archives env={report.env} lists archives, "
        "restore=1 archive=NAME brings one back")


@app.command("restore")
def restore(
    env: EnvOption = None,
    archive: Annotated[str | None, typer.Option("--archive", help="An archive name, or latest.")] = None,
    table: TableOption = None,
    yes: YesOption = False,
    trust_unsigned: Annotated[bool, typer.Option(
        "--trust-unsigned", help="Use an unsigned archive (made before signatures), named explicitly; journaled.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Bring an archive's rows back into their table; rows already there stay as they are (restore=1)."""
    chosen = environment(env)
    report = commands.restore_archive(settings(), chosen, archive, table, yes=yes, ask=asker(chosen), notify=say,
                                      trust_unsigned=trust_unsigned)
    if json:
        print_json(report)
        return
    out.print(f"{report.archive}: {report.inserted:,} of its {report.rows:,} rows are back in {report.table}"
              + (f"; {report.present:,} were already there and were left as they are" if report.present else ""))


@app.command("list")
def list_archives(env: EnvOption = None, all_: Annotated[bool, typer.Option(
        "--all", help="Also show incomplete archives (being written, interrupted or damaged).")] = False,
        json: JsonOption = False) -> None:
    """An environment's archives, oldest first: table, cutoff, rows, size, state, last check (make db-archives)."""
    chosen = environment(env)
    entries = catalog.list_archives(settings(), chosen)
    shown = entries if all_ else [e for e in entries if e.complete]
    if json:
        print_json([_view(e) for e in shown])
        return
    listing = Table("name", "table", "older than", "rows", "size", "state", "verified",
                    title=f"archives of {chosen.name}")
    for e in shown:
        cutoff = e.manifest.dump.get("cutoff", "")[:19].replace("T", " ") if e.manifest else ""
        listing.add_row(e.name, e.table or "", cutoff, f"{e.rows:,}" if e.rows is not None else "",
                        size(e.manifest.size) if e.manifest else "", e.state,
                        check_text(e.verification, e.damage(VERIFICATION)))
    out.print(listing)
    show_damage([damage for e in shown for damage in e.damaged])
    hidden = len(entries) - len(shown)
    if hidden:
        say(f"{hidden} incomplete archive(s) not shown (interrupted exports: no row was deleted for them): --all")


def _view(entry: catalog.ArchiveEntry) -> dict[str, object]:
    manifest = entry.manifest
    return {"name": entry.name, "env": entry.env, "taken_at": entry.taken_at, "table": entry.table,
            "rows": entry.rows, "state": entry.state, "complete": entry.complete, "pending": entry.pending,
            "column": manifest.dump.get("column") if manifest else None,
            "cutoff": manifest.dump.get("cutoff") if manifest else None,
            "size": manifest.size if manifest else None,
            "verification": "damaged" if entry.damage(VERIFICATION) else entry.verification,
            "deletion": "damaged" if entry.damage(catalog.DELETION) else entry.deletion,
            "restored": "damaged" if entry.damage(catalog.RESTORED) else entry.restored, "problem": entry.problem,
            "damaged": list(entry.damaged), "repository": entry.repository}


@app.command("verify")
def verify(name: Annotated[str | None, typer.Argument(help="An archive name, or latest.")] = None,
           env: EnvOption = None, json: JsonOption = False) -> None:
    """Decrypt every object of an archive and check sizes, checksums and row counts; record the result."""
    s = settings()
    reference = required(name, "the archive: archive=NAME (or archive=latest)")
    chosen = environment(env if env is not None or reference == "latest" else _own_env(reference))

    def show(report: VerifyReport) -> None:
        if json:
            print_json(report)
        else:
            for problem in report.problems:
                out.print(f"[red]problem[/] {problem}")

    report = commands.verify_archive(s, chosen, reference, show=show)
    if not json:
        say(f"{report.name}: {report.objects} objects, {size(report.bytes)}, {report.rows or 0:,} rows of "
            f"{report.table}: checksums, decryption and row counts are all good ({report.seconds:.1f}s)")


def _own_env(reference: str) -> str | None:
    own, _ = catalog.parse_name(reference)
    return own if own in settings().environments else None

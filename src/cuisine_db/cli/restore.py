"""`cuisine-db restore ...`: whole-database and table restores, test restores, and what restores leave behind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from cuisine_db.backup import catalog, leftovers, names, restore_tables
from cuisine_db.backup import restore as restoring
from cuisine_db.backup.catalog import Check, Resolved
from cuisine_db.backup.manifest import TEST_RESTORE
from cuisine_db.backup.restore import RestoreReport
from cuisine_db.backup.workspace import who
from cuisine_db.cli.backups import progress_bar, required, size
from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, confirm, environment, out, print_json, say, settings
from cuisine_db.config import Environment
from cuisine_db.errors import CuisineDbError
from cuisine_db.ops import maintenance
from cuisine_db.ops.journal import journaled

app = typer.Typer(help="Restores: whole database, chosen tables, test restores, leftovers.", no_args_is_help=True)

BackupOption = Annotated[str | None, typer.Option("--backup", "-b", help="A backup name, or latest.")]


def _resolve(env: Environment, backup: str | None, purpose: str,
             tables: list[names.TableName] | None = None) -> Resolved:
    reference = required(backup, "the backup: backup=NAME (or backup=latest)")
    if reference != "latest":
        names.parse(reference)
    resolved = catalog.resolve(settings(), env, reference, purpose=purpose, tables=tables or ())
    if reference == "latest":
        say(f"using backup {resolved.manifest.name} ({resolved.reason})")
    return resolved


def _report(report: RestoreReport, json: bool) -> None:
    if json:
        print_json(report)
        return
    for warning in report.warnings:
        say(f"[yellow]warning:[/] {warning}")
    rows = sum(report.tables.values())
    out.print(f"{report.env}: restored {report.backup} into {report.database!r}: {len(report.tables)} tables, "
              f"{rows:,} rows, matching the manifest, in {report.seconds:.1f}s")
    if report.kept:
        say(f"the previous database is kept as {report.kept!r} until you drop it: "
            f"cuisine-db restore drop-leftover --env {report.env} {report.kept}")


@app.command("database")
def database(env: EnvOption = None, backup: BackupOption = None, yes: YesOption = False,
             no_analyze: Annotated[bool, typer.Option(
                 "--no-analyze", help="Leave planner statistics to autovacuum instead of running ANALYZE first.")
             ] = False, json: JsonOption = False) -> None:
    """Full restore: into a fresh database, checked, then swapped in; the old one is kept (make db-restore)."""
    s = settings()
    chosen = environment(env)
    with journaled(s, chosen, "restore", {"backup": backup, "no_analyze": no_analyze}) as entry:
        resolved = _resolve(chosen, backup, "restore")
        name = resolved.manifest.name
        if chosen.protected:
            maintenance.require(s, chosen, "A full restore")
        confirm(chosen, f"Replacing database {chosen.database!r} with backup {name}", yes)
        with progress_bar("restore", not json) as bar:
            if resolved.manifest.type in ("data", "tables"):
                say(f"{name} is a {resolved.manifest.type} backup: its tables are restored in place")
                report = restore_tables.restore_tables(s, chosen, resolved, None, notify=say, progress=bar)
            else:
                report = restoring.restore_database(s, chosen, resolved, statistics=not no_analyze, notify=say,
                                                    progress=bar)
        entry.details.update(backup=name, kept=report.kept, seconds=report.seconds)
    _report(report, json)


@app.command("tables")
def tables(env: EnvOption = None, backup: BackupOption = None,
           tables: Annotated[str | None, typer.Option("--tables", help="users,recipes")] = None,
           yes: YesOption = False, json: JsonOption = False) -> None:
    """Restore only these tables (rows, indexes, constraints) in one transaction (make db-restore-tables)."""
    s = settings()
    chosen = environment(env)
    with journaled(s, chosen, "restore-tables", {"backup": backup, "tables": tables}) as entry:
        wanted = names.parse_tables(tables)
        resolved = _resolve(chosen, backup, "restore-tables", wanted)
        listed = ", ".join(str(t) for t in wanted)
        confirm(chosen, f"Replacing the rows of {listed} with those of backup {resolved.manifest.name}", yes)
        with progress_bar("restore", not json) as bar:
            report = restore_tables.restore_tables(s, chosen, resolved, wanted, notify=say, progress=bar)
        entry.details.update(backup=resolved.manifest.name, tables=list(report.tables), seconds=report.seconds)
    _report(report, json)


@app.command("test")
def test(env: EnvOption = None, backup: BackupOption = None,
         keep: Annotated[bool, typer.Option("--keep", help="Keep the test database afterwards.")] = False,
         json: JsonOption = False) -> None:
    """Restore into a scratch database on env's server, compare every table's row count with the manifest, and
    report the time it took: the measured recovery time (make db-test-restore env=staging)."""
    s = settings()
    chosen = environment(env)
    with journaled(s, chosen, "test-restore", {"backup": backup, "keep": keep}) as entry:
        resolved = _resolve(chosen, backup, "restore")
        started = datetime.now(UTC)
        try:
            with progress_bar("test restore", not json) as bar:
                report = restoring.restore_database(s, chosen, resolved, test=True, keep=keep, notify=say,
                                                    progress=bar)
        except CuisineDbError as exc:
            catalog.record(resolved.repository, resolved.manifest.name, TEST_RESTORE, Check(
                at=started, ok=False, by=who(), seconds=0, problems=[exc.message], details={"env": chosen.name}))
            raise
        catalog.record(resolved.repository, resolved.manifest.name, TEST_RESTORE, Check(
            at=started, ok=True, by=who(), seconds=report.seconds, problems=[],
            details={"env": chosen.name, "tables": report.tables, "database": report.database}))
        entry.details.update(backup=report.backup, seconds=report.seconds)
    if json:
        print_json(report)
        return
    out.print(f"{report.backup}: restored on {chosen.name} in {report.seconds:.1f}s (the measured recovery time); "
              f"{len(report.tables)} tables, {sum(report.tables.values()):,} rows, all matching the manifest")
    if report.dropped:
        say(f"the test database {report.database!r} was dropped (--keep keeps it)")
    else:
        say(f"the test database {report.database!r} was kept")


@app.command("leftovers")
def list_leftovers(env: EnvOption = None, json: JsonOption = False) -> None:
    """Databases kept by restores (the pre-restore original) or left by interrupted ones."""
    chosen = environment(env)
    found = leftovers.find(settings(), chosen)
    if json:
        print_json(found)
        return
    if not found:
        say(f"{chosen.name}: no leftovers of restores")
        return
    table = Table("database", "kind", "size", "sessions", "note", title=f"restore leftovers on {chosen.name}")
    for item in found:
        table.add_row(item.name, item.kind, size(item.bytes), str(item.sessions), item.comment or "")
    out.print(table)


@app.command("drop-leftover")
def drop_leftover(name: Annotated[str, typer.Argument(help="A database listed by restore leftovers.")],
                  env: EnvOption = None, yes: YesOption = False) -> None:
    """Drop one database a restore kept or left behind (only those; nothing else can be dropped here)."""
    s = settings()
    chosen = environment(env)
    with journaled(s, chosen, "restore drop-leftover", {"database": name}):
        item = leftovers.get(s, chosen, name)
        confirm(chosen, f"Dropping database {item.name!r} ({item.kind}, {size(item.bytes)})", yes)
        leftovers.drop(s, chosen, item)
    say(f"{chosen.name}: dropped {name!r}")

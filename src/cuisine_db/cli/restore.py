"""`cuisine-db restore ...`: whole-database and table restores, test restores, and what restores leave behind."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cuisine_db.backup import leftovers, restore_service
from cuisine_db.backup.restore import RestoreReport
from cuisine_db.cli import pitr_render
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
from cuisine_db.cli.render import progress_bar, size

app = typer.Typer(help="Restores: whole database, chosen tables, test restores, leftovers.", no_args_is_help=True)

BackupOption = Annotated[str | None, typer.Option("--backup", "-b", help="A backup name, or latest.")]
TrustUnsignedOption = Annotated[bool, typer.Option(
    "--trust-unsigned", help="Use an unsigned backup (made before signatures), named explicitly; journaled.")]


def _notify(message: str) -> None:
    """The services' progress lines on stderr, a warning in yellow."""
    if message.startswith("warning: "):
        say(f"[yellow]warning:[/] {message.removeprefix('warning: ')}")
    else:
        say(message)


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
             ] = False,
             open_: Annotated[bool | None, typer.Option(
                 "--open/--no-open", help="Physical backups: open the restored server now, or leave it laid down for "
                                          "db-apply-logs (default: wait under maintenance mode, open otherwise).")
             ] = None,
             trust_unsigned: Annotated[bool, typer.Option(
                 "--trust-unsigned", help="Use an unsigned backup (made before signatures), named explicitly; "
                                          "journaled.")] = False,
             json: JsonOption = False) -> None:
    """Full restore (make db-restore): a logical backup into a fresh database, checked, then swapped in (the old one
    is kept); a physical one in place of the whole cluster (the old data directory kept until it opens)."""
    chosen = environment(env)
    with progress_bar("restore", not json) as bar:
        done = restore_service.restore_database(settings(), chosen, backup, yes=yes, ask=asker(chosen),
                                                statistics=not no_analyze, open_now=open_,
                                                trust_unsigned=trust_unsigned, notify=_notify, progress=bar)
    if done.laid is not None:
        pitr_render.laid(done.laid, json)
    elif done.restored is not None:
        _report(done.restored, json)


@app.command("apply-logs")
def apply_logs(env: EnvOption = None,
               target: Annotated[str | None, typer.Option("--target", help="Stop at this commit time, with its "
                                                          "time zone: \"2026-03-15 12:00:00+00\".")] = None,
               lsn: Annotated[str | None, typer.Option("--lsn", help="Stop at this WAL position (0/3000060).")] = None,
               xid: Annotated[str | None, typer.Option("--xid", help="Stop at this transaction.")] = None,
               inclusive: Annotated[bool, typer.Option("--inclusive/--exclusive", help="Include the target's own "
                                                       "transaction (default) or stop just before it.")] = True,
               force: Annotated[bool, typer.Option("--force", help="Replay even across a hole in the archive (up to "
                                                   "the hole).")] = False,
               trust_unsigned: Annotated[bool, typer.Option(
                   "--trust-unsigned", help="Also replay WAL archived before signatures (no signed record); "
                                            "journaled.")] = False,
               json: JsonOption = False) -> None:
    """Replay archived WAL onto the restored full backup, to the end or to a target, then open it (make
    db-apply-logs). Prints the point it reached."""
    chosen = environment(env)
    report = restore_service.apply_logs(settings(), chosen, target, lsn, xid, inclusive=inclusive, force=force,
                                        trust_unsigned=trust_unsigned, notify=_notify,
                                        report=pitr_render.replay_progress(not json))
    pitr_render.opened(report, json)


@app.command("open")
def open_restored(env: EnvOption = None, json: JsonOption = False) -> None:
    """Open a physical restore that waits for db-apply-logs as the backup left it (before maintenance-mode
    disable, which never opens it)."""
    report = restore_service.open_pending(settings(), environment(env), notify=say)
    pitr_render.opened(report, json)


@app.command("find-target")
def find_target(env: EnvOption = None,
                table: Annotated[str | None, typer.Option("--table", help="Only what touched this table.")] = None,
                min_rows: Annotated[int, typer.Option("--min-rows", min=1, help="A DELETE or UPDATE counts from this "
                                                      "many rows in one transaction.")] = 1000,
                hours: Annotated[float | None, typer.Option("--hours", min=0.01, help="Only WAL archived in the last "
                                                            "N hours (default: since the newest physical backup).")
                                 ] = None,
                json: JsonOption = False) -> None:
    """Destructive transactions in the archived WAL (DROP, TRUNCATE, large DELETE/UPDATE) with the command that
    stops just before each (make db-find-target)."""
    from cuisine_db.backup import find_target as finding

    s = settings()
    chosen = environment(env)
    report = finding.find(s, chosen, table=table, min_rows=min_rows, hours=hours, notify=say)
    if json:
        print_json(report)
        return
    pitr_render.targets(report)


@app.command("tables")
def tables(env: EnvOption = None, backup: BackupOption = None,
           tables: Annotated[str | None, typer.Option("--tables", help="users,recipes")] = None,
           target: Annotated[str | None, typer.Option("--target", help="As of this commit time (physical "
                                                      "backups): \"2026-03-15 12:00:00+00\".")] = None,
           lsn: Annotated[str | None, typer.Option("--lsn", help="As of this WAL position.")] = None,
           xid: Annotated[str | None, typer.Option("--xid", help="As of this transaction.")] = None,
           inclusive: Annotated[bool, typer.Option("--inclusive/--exclusive", help="With the target's own "
                                                   "transaction (default) or just before it.")] = True,
           yes: YesOption = False, trust_unsigned: TrustUnsignedOption = False, json: JsonOption = False) -> None:
    """Restore only these tables (rows, indexes, constraints) in one transaction (make db-restore-tables); from a
    physical backup through a temporary instance, to a point in time with target=, lsn= or xid=."""
    chosen = environment(env)
    with progress_bar("restore", not json) as bar:
        report = restore_service.restore_tables(settings(), chosen, backup, tables, target=target, lsn=lsn, xid=xid,
                                                inclusive=inclusive, yes=yes, ask=asker(chosen),
                                                trust_unsigned=trust_unsigned, notify=_notify, progress=bar)
    _report(report, json)


@app.command("test")
def test(env: EnvOption = None, backup: BackupOption = None,
         keep: Annotated[bool, typer.Option("--keep", help="Keep the test database afterwards (logical backups).")
                         ] = False,
         trust_unsigned: TrustUnsignedOption = False, json: JsonOption = False) -> None:
    """Restore a backup where it cannot hurt, check it and report the time it took, the measured recovery time (make
    db-test-restore env=staging): a logical one into a scratch database on env's server, row counts compared with
    the manifest; a physical one into a throwaway cluster of its major version, replayed to consistency, amcheck."""
    chosen = environment(env)
    with progress_bar("test restore", not json) as bar:
        report = restore_service.test_restore(settings(), chosen, backup, keep=keep, trust_unsigned=trust_unsigned,
                                              notify=_notify, progress=bar)
    if json:
        print_json(report)
        return
    rows = f"{len(report.tables)} tables, {sum(report.tables.values()):,} rows"
    if report.physical:
        looked = ", ".join(f"{count} {unit}" for unit, count in report.amcheck.items())
        out.print(f"{report.backup}: restored into a throwaway PostgreSQL {report.server_version} cluster, consistent "
                  f"at {report.reached_lsn} and open in {report.seconds:.1f}s (the measured recovery time); amcheck "
                  f"clean ({looked}) in {report.check_seconds:.1f}s; {rows}"
                  + (", all matching the manifest" if report.matched_manifest else ""))
        say("the throwaway cluster was removed")
        return
    out.print(f"{report.backup}: restored on {chosen.name} in {report.seconds:.1f}s (the measured recovery time); "
              f"{rows}, all matching the manifest")
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
    leftovers.drop_named(s, chosen, name, yes=yes, ask=asker(chosen))
    say(f"{chosen.name}: dropped {name!r}")

"""`cuisine-db migrate ...`: the runbook's Database Migrations section."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cuisine_db import migrations
from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, asker, environment, out, print_json, say, settings
from cuisine_db.cli.render import show_findings
from cuisine_db.config import Environment
from cuisine_db.errors import CuisineDbError, FailedError
from cuisine_db.migrations import schema_dump
from cuisine_db.migrations.commands import accept_edit_journaled, migrate_journaled, rollback_journaled
from cuisine_db.migrations.files import parse
from cuisine_db.migrations.lint import lint_folder
from cuisine_db.migrations.lint_context import DEFAULT_MAJOR
from cuisine_db.migrations.round_trip import VerifyResult
from cuisine_db.migrations.round_trip import verify as verify_round_trip

app = typer.Typer(help="Schema migrations (dbmate-compatible files in db/migrations).", no_args_is_help=True)

DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what would run; change nothing.")]
LockWaitOption = Annotated[
    float, typer.Option("--lock-wait", help="Seconds to wait for another migration runner.", min=0)
]


def _write_schema(env: Environment) -> None:
    s = settings()
    try:
        path = schema_dump.write(s, env)
    except CuisineDbError as exc:
        say(f"[yellow]warning:[/] could not write {s.schema_file}: {exc.message}")
        return
    say(f"wrote {path.relative_to(s.root) if path.is_relative_to(s.root) else path}")


def _report(result: migrations.RunResult, verb: str, json: bool) -> None:
    if json:
        print_json(result)
        return
    for step in result.steps:
        retries = f", {step.lock_retries} lock retries" if step.lock_retries else ""
        detail = f"{step.statements} statements, {step.duration_ms} ms{retries}"
        out.print(f"  {verb} {step.version}_{step.name}  ({detail})")
    for index, table in result.invalid_indexes:
        out.print(f"[yellow]warning:[/] index {index} on {table} is INVALID (a failed CREATE INDEX CONCURRENTLY?); "
                  f"drop it and build it again: DROP INDEX CONCURRENTLY {index};")


@app.command("up")
def up(env: EnvOption = None, dry_run: DryRunOption = False, json: JsonOption = False,
       lock_wait: LockWaitOption = 600,
       force: Annotated[bool, typer.Option("--force", help="Apply even with lint errors on a protected env "
                                                           "(journaled).")] = False) -> None:
    """Apply pending migrations in version order (make db-migrate)."""
    s = settings()
    chosen = environment(env)
    result = migrate_journaled(s, chosen, dry_run=dry_run, lock_wait=lock_wait, notify=say, force=force)
    _report(result, "would apply" if dry_run else "applied", json)
    if not json:
        total = len(result.steps)
        if dry_run:
            say(f"{chosen.name}: {total} pending migration(s); nothing was changed")
        elif total:
            say(f"{chosen.name}: applied {total} migration(s)")
        else:
            say(f"{chosen.name}: already up to date")
    if result.steps and not dry_run:
        _write_schema(chosen)


@app.command("rollback")
def rollback(
    env: EnvOption = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Roll back the last N applied migrations.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Roll back every migration newer than this.")] = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    json: JsonOption = False,
    lock_wait: LockWaitOption = 600,
) -> None:
    """Roll back by steps or to a version, newest applied first (make db-rollback)."""
    s = settings()
    chosen = environment(env)
    result = rollback_journaled(s, chosen, steps=steps, version=version, dry_run=dry_run, lock_wait=lock_wait,
                                yes=yes, ask=asker(chosen), notify=say)
    _report(result, "would roll back" if dry_run else "rolled back", json)
    if not json:
        say(f"{chosen.name}: {'would roll back' if dry_run else 'rolled back'} {len(result.steps)} migration(s)")
    if result.steps and not dry_run:
        _write_schema(chosen)


@app.command("status")
def status(env: EnvOption = None, json: JsonOption = False) -> None:
    """Applied, pending, drifted and missing migrations; exit 1 when any drifted or went missing."""
    chosen = environment(env)
    states = migrations.status(settings(), chosen)
    if json:
        print_json(states)
    else:
        table = Table("version", "name", "state", "applied at", "by", "ms", title=f"migrations on {chosen.name}")
        colours = {"applied": "green", "pending": "yellow", "drifted": "red", "missing": "red"}
        for state in states:
            label = f"[{colours[state.state]}]{state.state}[/]" + (" (out of order)" if state.out_of_order else "")
            when = state.applied_at.strftime("%Y-%m-%d %H:%M:%S") if state.applied_at else ""
            table.add_row(state.version, state.name, label, when, state.applied_by or "",
                          str(state.duration_ms) if state.duration_ms is not None else "")
        out.print(table)
    bad = [state for state in states if state.state in ("drifted", "missing")]
    if bad:
        raise FailedError(
            f"{len(bad)} applied migration(s) drifted or missing: " + ", ".join(f"{b.version}_{b.name}" for b in bad),
            hint="db-migrate refuses to run until each is reverted or accepted (cuisine-db migrate accept-edit)",
        )


@app.command("lint")
def lint_files(
    files: Annotated[list[Path] | None, typer.Argument(help="Migration files (default: all in db/migrations).")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Judge for this environment's PostgreSQL version "
                                                          f"(default {DEFAULT_MAJOR}, the oldest supported).")] = None,
    json: JsonOption = False,
) -> None:
    """Report risky statements (locks, rewrites, data loss) with PostgreSQL's parser; exit 1 on any unwaived one."""
    folder = migrations.discover(settings().migrations_dir)
    chosen = [parse(path) for path in files] if files else folder
    known = {m.version: m for m in folder} | {m.version: m for m in chosen}
    major = environment(env).postgres_version if env else DEFAULT_MAJOR
    findings = lint_folder(list(known.values()), chosen, major=major)
    show_findings(findings, title="migration lint", json=json, clean=f"{len(chosen)} migration(s), no risky statements")
    risky = [finding for finding in findings if finding.severity != "info"]
    if risky:
        raise FailedError(f"{len(risky)} risky statement(s) in {len({f.subject for f in risky})} place(s)")


@app.command("create")
def create(name: Annotated[str, typer.Argument(help="What the migration does, e.g. add_user_preferences.")]) -> None:
    """Write db/migrations/YYYYMMDDHHMMSS_NAME.sql with empty up and down sections (make db-create-migration)."""
    s = settings()
    path = migrations.create(s.migrations_dir, name)
    out.print(str(path.relative_to(s.root) if path.is_relative_to(s.root) else path))


@app.command("accept-edit")
def accept_edit(version: Annotated[str, typer.Argument(help="The edited migration's version.")],
                env: EnvOption = None, yes: YesOption = False) -> None:
    """Record a deliberate edit of an applied migration, so migrate stops refusing."""
    s = settings()
    chosen = environment(env)
    state = accept_edit_journaled(s, chosen, version, yes=yes, ask=asker(chosen))
    say(f"{chosen.name}: recorded the new checksum of {state.version}_{state.name}")


@app.command("verify")
def verify(env: EnvOption = None, json: JsonOption = False) -> None:
    """Run up, down, up on a scratch cluster of the environment's version and compare schema dumps."""
    chosen = environment(env)
    result = verify_round_trip(settings(), chosen, notify=say)
    if json:
        print_json({**{k: getattr(result, k) for k in VerifyResult.__slots__}, "ok": result.ok})
    else:
        for line in result.differences:
            out.print(line, markup=False)
        if result.reapply_error:
            out.print(f"applying again after rolling back failed: {result.reapply_error}", markup=False)
    if not result.ok:
        raise FailedError("the migrations do not round-trip: a down section does not undo its up exactly",
                          hint="read the differences above")
    say(f"{result.migrations} migrations round-trip cleanly on PostgreSQL {result.postgres_version}")

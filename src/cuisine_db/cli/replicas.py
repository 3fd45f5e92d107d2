"""`cuisine-db replica ...` (db-create-replica, db-replicas, db-promote-replica, db-drop-replica) and the
`--replica NAME|any` option of the read-only reporting commands."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cuisine_db.cli.common import (
    EnvOption,
    JsonOption,
    YesOption,
    asker,
    confirm,
    environment,
    err,
    out,
    print_json,
    say,
    settings,
)
from cuisine_db.cli.render import show_findings
from cuisine_db.config import Environment
from cuisine_db.errors import FailedError, RefusedError, UsageError
from cuisine_db.humanize import duration, size
from cuisine_db.ops.journal import journaled

app = typer.Typer(help="Streaming replicas: create, list (lag), promote, drop, start, stop.", no_args_is_help=True)

NameOption = Annotated[str, typer.Option("--name", "-n", help="The replica's name, e.g. reports1.")]


def confirm_always(env: Environment, action: str, word: str, yes: bool) -> None:
    """Work that cannot be undone on any environment: the operator types `word`, or gives --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise RefusedError(f"{action} needs confirmation and there is no terminal to ask",
                           hint="add yes=1 to the make command (or --yes) once you are sure")
    err.print(f"[bold red]{escape(action)}[/] ({env.name}).")
    typed = typer.prompt(f"Type {word!r} to go on", default="", show_default=False)
    if typed.strip() != word:
        raise RefusedError("confirmation did not match; nothing was done")


def _plan(plan_steps: list[tuple[str, list[str]]], title: str) -> None:
    out.print(f"[bold]{escape(title)}[/]")
    for number, (what, lines) in enumerate(plan_steps, 1):
        out.print(f"\n{number}. {escape(what)}")
        for line in lines:
            out.print(f"   {escape(line)}")


SeedFromOption = Annotated[str | None, typer.Option(
    "--from", help="primary (default: pg_basebackup copies it) or backup: lay down the newest physical backup and "
                   "catch up from the WAL archive, then stream (the primary copies nothing).")]
BackupOption = Annotated[str | None, typer.Option(
    "--backup", help="With --from backup: which physical backup, a name or latest (the default).")]


@app.command("create")
def create(env: EnvOption = None, name: NameOption = "",
           port: Annotated[int | None, typer.Option("--port", help="Its port (default: a free one).")] = None,
           origin: SeedFromOption = None, backup: BackupOption = None, json: JsonOption = False) -> None:
    """A streaming replica (pg_basebackup -R, or a backup and the archive; a slot) on its own port; for a remote
    environment, the steps to apply."""
    from cuisine_db.replicas import create as creating
    from cuisine_db.replicas import plans

    s = settings()
    chosen = environment(env)
    if chosen.patroni is not None:
        _patroni_create(chosen, name, port, origin, backup, json)
        return
    seed = creating.seed_backup(chosen, origin, backup)
    if not chosen.is_local:
        plan = plans.create_plan(chosen, name, port)
        if json:
            print_json(plan)
        else:
            _plan(plan.steps, f"Replica {name} of remote environment {chosen.name}: apply these steps")
        return
    with journaled(s, chosen, "create-replica", {"name": name, "port": port, "backup": seed}) as entry:
        made = creating.create(s, chosen, name, port=port, backup=seed, notify=say)
        entry.details.update(port=made.port, slot=made.slot, seconds=made.seconds, seeded_from=made.seeded_from)
    if json:
        print_json(made)
        return
    seeded = f", seeded from {made.seeded_from} and the archive" if made.seeded_from else ""
    out.print(f"{chosen.name}: replica [bold]{made.name}[/] streams from {made.primary} on 127.0.0.1:{made.port} "
              f"through slot {made.slot}{seeded} ({made.seconds:.1f}s)")
    say(f"read from it: make db-table-sizes env={chosen.name} replica={made.name}; its lag: make db-replicas "
        f"env={chosen.name}")


def _lag(bytes_: int | None, seconds: float | None) -> str:
    if bytes_ is None and seconds is None:
        return "-"
    return f"{size(bytes_) if bytes_ is not None else '?'} / {duration(seconds) if seconds is not None else '-'}"


@app.command("list")
def list_replicas(env: EnvOption = None, json: JsonOption = False) -> None:
    """Each replica's state, write/flush/replay lag in bytes and seconds, its slot; exit 1 on a problem."""
    from cuisine_db.replicas import lag, replica_checks

    chosen = environment(env)
    if chosen.patroni is not None:
        _patroni_list(chosen, json)
        return
    report = lag.measure(settings(), chosen)
    findings = replica_checks.judge(report, chosen)
    if json:
        print_json({"report": report, "findings": findings})
    else:
        # write/flush: the primary's pg_stat_replication; replay: read from the replica itself (replicas/lag.py),
        # since the primary's replay_lag stands still while a replica's replay is paused.
        title = (f"replicas of {chosen.name} (primary {report.primary}, WAL at {report.primary_lsn}; bound "
                 f"{chosen.replica_max_lag_seconds:g} s, {size(chosen.replica_max_lag_bytes)})")
        table = Table("replica", "where", "state", "write lag", "flush lag", "replay lag", "slot", "reads", title=title)
        for status in report.replicas:
            row = status.streaming
            state = ("paused" if status.paused else status.receiver or "no receiver") if status.reachable \
                else (status.problem or "unreachable")
            if status.reachable and not status.in_recovery:
                state = "PROMOTED"
            slot = status.slot
            slot_text = "-" if slot is None else \
                f"{slot.name} ({'active' if slot.active else 'inactive'}, keeps {size(slot.retained_bytes)}, " \
                f"{slot.wal_status})"
            reason = lag.unfit(status, chosen)
            table.add_row(escape(status.name), status.where, escape(state),
                          _lag(row.write_bytes, row.write_seconds) if row else "-",
                          _lag(row.flush_bytes, row.flush_seconds) if row else "-",
                          _lag(status.replay_bytes, status.delay_seconds), escape(slot_text),
                          "[green]yes[/]" if reason is None else f"[yellow]no[/]: {escape(reason)}")
        out.print(table)
        if not report.replicas:
            say(f"{chosen.name} has no replicas: make db-create-replica env={chosen.name} name=reports1")
        show_findings(findings, title="replication", clean="replication is healthy")
    if findings and any(f.severity != "info" for f in findings):
        if not json:
            say(f"{len(findings)} finding(s)")
        raise typer.Exit(1)


@app.command("promote")
def promote(env: EnvOption = None, name: NameOption = "", yes: YesOption = False, json: JsonOption = False) -> None:
    """Make a replica the primary (switchover: nothing lost); the tool's view follows. Always asks (or --yes)."""
    from cuisine_db.replicas import plans
    from cuisine_db.replicas import promote as promoting
    from cuisine_db.replicas.members import check_name

    s = settings()
    chosen = environment(env)
    if chosen.patroni is not None:
        _patroni_promote(chosen, name, yes, json)
        return
    check_name(name)
    if not chosen.is_local:
        plan = plans.promote_plan(chosen, name)
        if json:
            print_json(plan)
        else:
            _plan(plan.steps, f"Promoting replica {name} of remote environment {chosen.name}: the steps")
        return
    with journaled(s, chosen, "promote-replica", {"name": name, "yes": yes}) as entry:
        confirm_always(chosen, f"Promoting replica {name} makes it the primary of {chosen.name}; the current primary "
                       "is stopped and must be rebuilt", name, yes)
        done = promoting.promote(s, chosen, name, notify=say)
        entry.details.update(kind=done.kind, former_primary=done.former_primary, followed=done.followed,
                             stranded=done.stranded)
    if json:
        print_json(done)
    else:
        out.print(f"{chosen.name}: [bold]{done.name}[/] is the primary now (127.0.0.1:{done.port}, {done.kind}, "
                  f"{done.seconds:.1f}s); the old primary is {done.former_primary} (stopped, needs a rebuild)")
        if done.followed:
            say(f"following the new primary: {', '.join(done.followed)}")
        say(f"rebuild: make db-drop-replica env={chosen.name} name={done.former_primary}, then "
            f"make db-create-replica env={chosen.name} name=...")
    if done.stranded:
        first = next(iter(done.stranded.items()))
        raise FailedError(f"promoted, but {len(done.stranded)} replica(s) could not follow: {first[0]}: {first[1]}",
                          hint=f"make db-drop-replica env={chosen.name} name={first[0]}, then create it again")


def _patroni_create(chosen: Environment, name: str, port: int | None, origin: str | None, backup: str | None,
                    json: bool) -> None:
    from cuisine_db.replicas import patroni_member

    if port is not None or origin is not None or backup is not None:
        raise UsageError(f"{chosen.name} is a Patroni environment: a new member is always seeded from the newest "
                         "physical backup and the archive (Patroni copies the leader only when there is none), on "
                         "free ports; port=, from= and backup= do not apply; nothing was changed")
    s = settings()
    with journaled(s, chosen, "create-replica", {"name": name, "patroni": True}) as entry:
        made = patroni_member.add(s, chosen, name, notify=say)
        entry.details.update(port=made.port, seconds=made.seconds, seeded_from=made.seeded_from)
    if json:
        print_json(made)
        return
    seeded = f"seeded from {made.seeded_from} and the archive" if made.seeded_from else \
        f"copied from the leader {made.leader} by Patroni (no physical backup existed)"
    out.print(f"{chosen.name}: Patroni member [bold]{made.name}[/] streams from {made.leader} on "
              f"127.0.0.1:{made.port} (timeline {made.timeline}), {seeded} ({made.seconds:.1f}s)")


def _patroni_list(chosen: Environment, json: bool) -> None:
    """Patroni's members (role, state, timeline, lag, tags), its timeline history; exit 1 on a warning or worse."""
    from cuisine_db.replicas import patroni as patroni_replicas

    listed = patroni_replicas.listing(settings(), chosen)
    view = listed.view
    if json:
        print_json(listed)
    else:
        paused = " [yellow](paused: no automatic failover)[/]" if view.paused else ""
        table = Table("member", "role", "state", "where", "timeline", "lag", "tags",
                      title=f"members of {chosen.name} (Patroni cluster {escape(view.scope or '?')}){paused}; "
                            f"bound {size(chosen.replica_max_lag_bytes)}")
        for m in view.members:
            lag = "" if m.is_leader else (size(m.lag_bytes) if m.lag_bytes is not None else "unknown")
            tags = ", ".join(f"{k}={v}" for k, v in sorted(m.tags.items()) if v not in (False, None)) or "-"
            table.add_row(escape(m.name), escape(m.role), escape(m.state), f"{escape(m.host)}:{m.port}",
                          str(m.timeline or "?"), lag, escape(tags))
        out.print(table)
        if listed.history:
            last = listed.history[-1]
            say(f"timeline history: {len(listed.history)} switch(es); last: timeline {last.timeline} ended "
                f"({last.reason}) {last.at or ''}{f', new leader {last.new_leader}' if last.new_leader else ''}")
        show_findings(listed.findings, title="Patroni", clean="every member streams within the bound")
    if any(f.severity != "info" for f in listed.findings):
        if not json:
            say(f"{len(listed.findings)} finding(s)")
        raise typer.Exit(1)


def _patroni_promote(chosen: Environment, name: str, yes: bool, json: bool) -> None:
    from cuisine_db.replicas import patroni as patroni_replicas

    s = settings()
    with journaled(s, chosen, "promote-replica", {"name": name, "yes": yes}) as entry:
        done = patroni_replicas.promote(s, chosen, name, yes=yes, ask=asker(chosen), notify=say)
        entry.details.update(kind=done.kind, former_leader=done.former_leader, timeline=done.timeline)
    if json:
        print_json(done)
        return
    former = f" (was {done.former_leader})" if done.former_leader else ""
    out.print(f"{chosen.name}: [bold]{escape(done.name)}[/] leads now{former}: {done.kind} by Patroni, "
              f"{done.host}:{done.port}, timeline {done.timeline}, {done.seconds:.1f}s")


@app.command("drop")
def drop(env: EnvOption = None, name: NameOption = "", yes: YesOption = False, json: JsonOption = False) -> None:
    """Stop and remove a replica (or a former primary) and drop its slot; remote: drop the slot only."""
    from cuisine_db.replicas import drop as dropping

    s = settings()
    chosen = environment(env)
    kind = dropping.kind_of(s, chosen, name)
    with journaled(s, chosen, "drop-replica", {"name": name, "yes": yes}) as entry:
        if kind == "former primary":
            confirm_always(chosen, f"Deleting former primary {name}'s data: transactions it took after the "
                           "promotion exist nowhere else", name, yes)
        else:
            confirm(chosen, f"Dropping replica {name}", yes)
        done = dropping.drop(s, chosen, name, notify=say)
        entry.details.update(kind=done.kind, slot=done.slot)
    if json:
        print_json(done)
        return
    slot = f"; slot {done.slot} dropped" if done.slot else ""
    where = f" ({done.removed} removed)" if done.removed else ""
    out.print(f"{chosen.name}: {done.kind} {done.name} dropped{where}{slot}")
    if done.note:
        say(done.note)


@app.command("start")
def start(env: EnvOption = None, name: NameOption = "") -> None:
    """Start a local replica's server (it catches up through its slot)."""
    from cuisine_db.replicas import control

    s = settings()
    chosen = environment(env)
    with journaled(s, chosen, "replica start", {"name": name}):
        cluster = control.start(s, chosen, name)
    say(f"{chosen.name}: replica {name} running on 127.0.0.1:{cluster.port}")


@app.command("stop")
def stop(env: EnvOption = None, name: NameOption = "") -> None:
    """Stop a local replica's server (its slot keeps the WAL it will need on the primary)."""
    from cuisine_db.replicas import control

    s = settings()
    chosen = environment(env)
    with journaled(s, chosen, "replica stop", {"name": name}):
        control.stop(s, chosen, name)
    say(f"{chosen.name}: replica {name} stopped; its slot keeps WAL on the primary until it is back")

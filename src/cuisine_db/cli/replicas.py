"""`cuisine-db replica ...` (db-create-replica, db-replicas, db-promote-replica, db-drop-replica) and the
`--replica NAME|any` option of the read-only reporting commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cuisine_db.cli.common import (
    EnvOption,
    JsonOption,
    YesOption,
    environment,
    out,
    print_json,
    say,
    settings,
    word_asker,
)
from cuisine_db.cli.render import show_findings
from cuisine_db.config import Environment
from cuisine_db.errors import FailedError
from cuisine_db.findings import Finding
from cuisine_db.humanize import duration, size

app = typer.Typer(help="Streaming replicas: create, list (lag), promote, drop, start, stop.", no_args_is_help=True)

NameOption = Annotated[str, typer.Option("--name", "-n", help="The replica's name, e.g. reports1.")]


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
    from cuisine_db.replicas import replica_service
    from cuisine_db.replicas.create import CreatedReplica
    from cuisine_db.replicas.plans import Plan

    chosen = environment(env)
    made = replica_service.create_replica(settings(), chosen, name, port=port, origin=origin, backup=backup,
                                          notify=say)
    if json:
        print_json(made)
    elif isinstance(made, Plan):
        _plan(made.steps, f"Replica {name} of remote environment {chosen.name}: apply these steps")
    elif isinstance(made, CreatedReplica):
        seeded = f", seeded from {made.seeded_from} and the archive" if made.seeded_from else ""
        out.print(f"{chosen.name}: replica [bold]{made.name}[/] streams from {made.primary} on 127.0.0.1:{made.port} "
                  f"through slot {made.slot}{seeded} ({made.seconds:.1f}s)")
        say(f"read from it: make db-table-sizes env={chosen.name} replica={made.name}; its lag: make db-replicas "
            f"env={chosen.name}")
    else:
        seeded = f"seeded from {made.seeded_from} and the archive" if made.seeded_from else \
            f"copied from the leader {made.leader} by Patroni (no physical backup existed)"
        out.print(f"{chosen.name}: Patroni member [bold]{made.name}[/] streams from {made.leader} on "
                  f"127.0.0.1:{made.port} (timeline {made.timeline}), {seeded} ({made.seconds:.1f}s)")


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
    _exit_on_problems(findings, json)


def _exit_on_problems(findings: Sequence[Finding], json: bool) -> None:
    """Exit 1 when a finding is a warning or worse (info alone passes), counting the findings for people."""
    if any(f.severity != "info" for f in findings):
        if not json:
            say(f"{len(findings)} finding(s)")
        raise typer.Exit(1)


@app.command("promote")
def promote(env: EnvOption = None, name: NameOption = "", yes: YesOption = False, json: JsonOption = False) -> None:
    """Make a replica the primary (switchover: nothing lost); the tool's view follows. Always asks (or --yes)."""
    from cuisine_db.replicas import replica_service
    from cuisine_db.replicas.plans import Plan
    from cuisine_db.replicas.promote import Promotion

    chosen = environment(env)
    done = replica_service.promote_replica(settings(), chosen, name, yes=yes, ask=word_asker(chosen), notify=say)
    if json:
        print_json(done)
    elif isinstance(done, Plan):
        _plan(done.steps, f"Promoting replica {name} of remote environment {chosen.name}: the steps")
    elif isinstance(done, Promotion):
        out.print(f"{chosen.name}: [bold]{done.name}[/] is the primary now (127.0.0.1:{done.port}, {done.kind}, "
                  f"{done.seconds:.1f}s); the old primary is {done.former_primary} (stopped, needs a rebuild)")
        if done.followed:
            say(f"following the new primary: {', '.join(done.followed)}")
        say(f"rebuild: make db-drop-replica env={chosen.name} name={done.former_primary}, then "
            f"make db-create-replica env={chosen.name} name=...")
    else:
        former = f" (was {done.former_leader})" if done.former_leader else ""
        out.print(f"{chosen.name}: [bold]{escape(done.name)}[/] leads now{former}: {done.kind} by Patroni, "
                  f"{done.host}:{done.port}, timeline {done.timeline}, {done.seconds:.1f}s")
    if isinstance(done, Promotion) and done.stranded:
        first = next(iter(done.stranded.items()))
        raise FailedError(f"promoted, but {len(done.stranded)} replica(s) could not follow: {first[0]}: {first[1]}",
                          hint=f"make db-drop-replica env={chosen.name} name={first[0]}, then create it again")


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
    _exit_on_problems(listed.findings, json)


@app.command("drop")
def drop(env: EnvOption = None, name: NameOption = "", yes: YesOption = False, json: JsonOption = False) -> None:
    """Stop and remove a replica (or a former primary) and drop its slot; remote: drop the slot only."""
    from cuisine_db.replicas import replica_service

    chosen = environment(env)
    done = replica_service.drop_replica(settings(), chosen, name, yes=yes, ask=word_asker(chosen), notify=say)
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
    from cuisine_db.replicas import replica_service

    chosen = environment(env)
    cluster = replica_service.start_replica(settings(), chosen, name)
    say(f"{chosen.name}: replica {name} running on 127.0.0.1:{cluster.port}")


@app.command("stop")
def stop(env: EnvOption = None, name: NameOption = "") -> None:
    """Stop a local replica's server (its slot keeps the WAL it will need on the primary)."""
    from cuisine_db.replicas import replica_service

    chosen = environment(env)
    replica_service.stop_replica(settings(), chosen, name)
    say(f"{chosen.name}: replica {name} stopped; its slot keeps WAL on the primary until it is back")

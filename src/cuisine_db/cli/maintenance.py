"""`cuisine-db maintenance enable|disable|status`: the runbook's db-maintenance-mode and maintenance-mode."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cuisine_db.cli.common import EnvOption, JsonOption, environment, out, print_json, say, settings
from cuisine_db.ops import maintenance
from cuisine_db.ops.maintenance import MaintenanceReport

app = typer.Typer(help="Maintenance mode: block application roles during restores and repairs.",
                  no_args_is_help=True)


def _limit(value: int | None) -> str:
    if value is None:
        return "(role gone)"
    return "no limit" if value == -1 else str(value)


def _show(report: MaintenanceReport, json: bool) -> None:
    if json:
        print_json(report)
        return
    if report.on:
        out.print(f"{report.env}: maintenance mode is [bold red]ON[/] since {report.since:%Y-%m-%d %H:%M:%S} UTC "
                  f"by {report.who}: {report.reason}")
    else:
        out.print(f"{report.env}: maintenance mode is [green]off[/]")
    if report.roles:
        table = Table("application role", "limit before", "limit now", "sessions")
        for role, before in sorted(report.roles.items()):
            table.add_row(role, _limit(before), _limit(report.limits_now.get(role)),
                          str(report.sessions.get(role, 0)))
        out.print(table)
    for note in report.notes:
        say(note)


@app.command("enable")
def enable(env: EnvOption = None,
           reason: Annotated[str | None, typer.Option("--reason", help="Why (shown by status).")] = None,
           json: JsonOption = False) -> None:
    """Block application roles (connection limit 0) and end their sessions; records reason, who and since."""
    chosen = environment(env)
    report = maintenance.enable_journaled(settings(), chosen, reason)
    _show(report, json)
    if not json and report.server_reached:
        blocked = ", ".join(sorted(report.roles)) or "none"
        ended = ", ".join(f"{role}: {count}" for role, count in sorted(report.ended.items()))
        kept = ", ".join(f"{role} ({why})" for role, why in sorted(report.left_connected.items())) or "none"
        say(f"{chosen.name}: blocked {len(report.roles)} application role(s): {blocked}; "
            f"{report.terminated} session(s) ended{f' ({ended})' if ended else ''}; left connected: {kept}")
        say(f"make db-maintenance-mode disable env={chosen.name} gives the blocked roles back their limits")


@app.command("disable")
def disable(env: EnvOption = None, json: JsonOption = False) -> None:
    """Give every blocked role back exactly the connection limit it had."""
    report = maintenance.disable_journaled(settings(), environment(env))
    _show(report, json)


@app.command("status")
def status(env: EnvOption = None, json: JsonOption = False) -> None:
    """Is maintenance mode on, since when, why, and do the server's role limits agree."""
    _show(maintenance.status(settings(), environment(env)), json)

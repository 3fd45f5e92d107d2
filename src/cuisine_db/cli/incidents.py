"""`cuisine-db incident create|list|show|resolve|report`: the runbook's incident response (make incident-create)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cuisine_db.cli.common import JsonOption, out, print_json, say, settings
from cuisine_db.cli.render import OverwriteOption, check_output, write_output
from cuisine_db.config import Settings
from cuisine_db.errors import UnavailableError
from cuisine_db.ops import incident_commands, incidents
from cuisine_db.ops.incident_commands import IncidentChange
from cuisine_db.ops.incident_copy import Copy, copy_incident
from cuisine_db.ops.incident_report import duration, markdown
from cuisine_db.ops.incidents import Incident
from cuisine_db.records import Damaged

app = typer.Typer(help="Incidents: open one, and every journaled command is linked to it until it is resolved.",
                  no_args_is_help=True)

IdArgument = Annotated[str, typer.Argument(help="The incident's id, e.g. INC-20250315-01.", show_default=False)]


def _announced(s: Settings, change: IncidentChange, event: str, quiet: bool) -> None:
    """The webhook's answer and the copies, as warnings where they failed (neither fails the command)."""
    if change.webhook_unset:
        say(f"[yellow]warning:[/] ${s.incident_webhook_env} is not set: the incident webhook was not notified")
    elif change.webhook is not None:
        if change.webhook.delivered:
            say(f"notified the incident webhook ({change.webhook.detail})")
        else:
            say(f"[yellow]warning:[/] could not notify the incident webhook ({change.webhook.detail}); "
                f"the incident is {'open' if event == 'opened' else 'resolved'} all the same")
    _copied(change.incident, change.copies, quiet)


def _copied(incident: Incident, copies: list[Copy], quiet: bool) -> None:
    for copy in copies:
        if not copy.copied:
            say(f"[yellow]warning:[/] could not copy {incident.id} to {copy.repository}: {copy.detail}; "
                f"it is kept on this host; cuisine-db incident copy {incident.id} tries again")
        elif not quiet:
            say(f"copied to {copy.repository}: {copy.detail}")


@app.command("create")
def create(
    severity: Annotated[str | None, typer.Option("--severity", help="1 critical, 2 major, 3 minor, 4 low.")] = None,
    description: Annotated[str | None, typer.Option("--description", help="What is happening, one line.")] = None,
    env: Annotated[str | None, typer.Option(
        "--env", "-e", help="Link only this environment's commands (default: every environment's).")] = None,
    json: JsonOption = False,
) -> None:
    """Open an incident and print its id (make incident-create severity=1 description="...")."""
    s = settings()
    change = incident_commands.create(s, severity, description, env)
    incident = change.incident
    _announced(s, change, "opened", json)
    if json:
        print_json(incident)
    else:
        out.print(incident.id)
        say(f"opened {incident.id} (severity {incident.severity}, {incident.severity_name}, {incident.scope}): "
            f"{incident.description}")
        say(f"every journaled command on {incident.scope} is linked to it until: "
            f"cuisine-db incident resolve {incident.id}")


@app.command("list")
def list_(
    open_only: Annotated[bool, typer.Option("--open", help="Only the open ones.")] = False,
    json: JsonOption = False,
) -> None:
    """Incidents, newest first; a damaged incident file is listed as damaged (exit 1)."""
    listed, damaged = incidents.scan(settings())
    found = [i for i in listed if i.status == "open" or not open_only]
    if json:
        print_json([*found, *({"status": "damaged", "file": d.where, "why": d.why} for d in damaged)])
        _damaged_exit(damaged)
        return
    if not found and not damaged:
        say("no open incidents" if open_only else "no incidents")
        return
    table = Table("id", "severity", "status", "scope", "opened (UTC)", "by", "time to recovery", "description",
                  title="incidents")
    for incident in found:
        recovery = incident.time_to_recovery()
        colour = "red" if incident.status == "open" else "green"
        table.add_row(incident.id, f"{incident.severity} {incident.severity_name}", f"[{colour}]{incident.status}[/]",
                      incident.scope, incident.opened_at[:19].replace("T", " "), incident.opened_by,
                      duration(recovery) if recovery is not None else "", incident.description)
    for record in damaged:
        table.add_row(Path(record.where).stem, "", "[red]damaged[/]", "", "", "", "", f"{record.where}: {record.why}")
    out.print(table)
    _damaged_exit(damaged)


def _damaged_exit(damaged: list[Damaged]) -> None:
    if damaged:
        say(f"{len(damaged)} incident file(s) damaged: " + ", ".join(d.where for d in damaged)
            + "; repair or move them away by hand")
        raise typer.Exit(1)


@app.command("show")
def show(incident_id: IdArgument, json: JsonOption = False) -> None:
    """One incident and the commands linked to it."""
    s = settings()
    incident = incidents.get(s, incident_id)
    entries = incidents.linked_entries(s, incident)
    if json:
        print_json({"incident": incident, "journal": entries})
        return
    for label, value in (
        ("id", incident.id), ("severity", f"{incident.severity} ({incident.severity_name})"),
        ("status", incident.status), ("scope", incident.scope), ("description", incident.description),
        ("opened", f"{incident.opened_at} by {incident.opened_by}"),
        ("resolved", f"{incident.resolved_at} by {incident.resolved_by}" if incident.resolved_at else "-"),
        ("resolution", incident.resolution or "-"), ("linked commands", str(len(entries))),
    ):
        out.print(f"{label:>16}: {value}", markup=False)


@app.command("resolve")
def resolve(
    incident_id: IdArgument,
    note: Annotated[str | None, typer.Option("--note", help="How it was resolved, one line.")] = None,
    json: JsonOption = False,
) -> None:
    """Resolve an open incident; commands stop being linked to it."""
    s = settings()
    change = incident_commands.resolve(s, incident_id, note)
    resolved = change.incident
    _announced(s, change, "resolved", json)
    if json:
        print_json(resolved)
        return
    say(f"resolved {resolved.id}; time to recovery {duration(resolved.time_to_recovery() or 0)}; "
        f"report: cuisine-db incident report {resolved.id}")


@app.command("copy")
def copy(incident_id: IdArgument, json: JsonOption = False) -> None:
    """Copy the incident, its journal lines and its report to the backup repositories again (they are copied on
    create and resolve); exit 3 if a repository could not take it."""
    s = settings()
    incident = incidents.get(s, incident_id)
    copies = copy_incident(s, incident.id)
    _copied(incident, copies, json)
    if json:
        print_json(copies)
    failed = [c.repository for c in copies if not c.copied]
    if failed:
        raise UnavailableError(f"{incident.id} was not copied to {', '.join(failed)}",
                               hint="check the repository settings in cuisine-db.toml and that it can be reached")


@app.command("report")
def report(
    incident_id: IdArgument,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the Markdown here.")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """The incident's Markdown timeline from the journal: what ran, outcome, durations, time to recovery."""
    s = settings()
    check_output(output, overwrite)
    incident = incidents.get(s, incident_id)
    text = markdown(incident, incidents.linked_entries(s, incident))
    if output is None:
        out.print(text, markup=False, end="")
        return
    write_output(output, text, overwrite=overwrite)

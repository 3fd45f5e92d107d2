"""`cuisine-db wal enable|status`: WAL archiving for the runbook's 15-minute transaction logs. (`wal push`, `wal
fetch` and `wal check` take the light path in entry.py: PostgreSQL runs them, once per segment.)"""

from __future__ import annotations

from typing import Annotated

import typer

from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, asker, environment, out, print_json, say, settings
from cuisine_db.cli.render import show_findings
from cuisine_db.errors import FailedError

app = typer.Typer(help="WAL archiving: enable, status (push, fetch and check are what the server runs).",
                  no_args_is_help=True)


@app.command("enable")
def enable(env: EnvOption = None,
           archive_timeout: Annotated[str | None, typer.Option(
               "--archive-timeout", help="Longest wait before a segment is archived (default wal.archive_timeout, "
                                         "15min).")] = None,
           restart: Annotated[bool, typer.Option("--restart", help="Restart a local cluster if archive_mode changed "
                                                 "(asks on a protected environment).")] = False,
           yes: YesOption = False, json: JsonOption = False) -> None:
    """Turn on WAL archiving: archive_mode, archive_command = 'cuisine-db wal push ... %p', archive_timeout."""
    from cuisine_db.backup.wal import enable as enabling

    chosen = environment(env)
    report = enabling.enable(settings(), chosen, archive_timeout=archive_timeout, restart=restart, yes=yes,
                             ask=asker(chosen))
    if json:
        print_json(report)
        return
    for note in report.notes:
        say(note)
    for change in report.changes:
        out.print(f"{change.name}: {change.old} -> {change.new}")
    if report.checked_as:
        say(f"checked: the archive command works for OS user {report.checked_as}")
    if report.credentials_file:
        say(f"S3 credentials for the server's user: {report.credentials_file} (0600)")
    if report.restarted:
        say(f"{chosen.name}: restarted; WAL archiving is on")
    elif report.restart_needed:
        say(f"[yellow]{chosen.name}: archive_mode takes effect at the next restart[/]: "
            f"cuisine-db wal enable --env {chosen.name} --restart (or restart the server)")
    else:
        say(f"{chosen.name}: WAL archiving is on")


@app.command("status")
def status(env: EnvOption = None, json: JsonOption = False) -> None:
    """Last archived segment and its age, failures, the archiver's lag, and holes in the archive; exit 1 on any."""
    from cuisine_db.backup.wal import status as wal_status

    s = settings()
    chosen = environment(env)
    report = wal_status.status(s, chosen)
    if json:
        print_json(report)
    else:
        out.print(f"{chosen.name}: {report.summary}")
        show_findings(report.findings, title=f"WAL archive of {chosen.name}")
    if any(f.severity in ("error", "critical") for f in report.findings):
        raise FailedError(f"the WAL archive of {chosen.name} has problems: {report.findings[0].evidence}")

"""`cuisine-db schedule show|install|run`: the runbook's daily full backup, retention and verification, and the
continuous backup status check, as crontab lines, systemd timers, or a foreground loop for containers."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from cuisine_db.backup.wal.enable import program
from cuisine_db.cli.common import EnvOption, JsonOption, environment, out, print_json, say, settings
from cuisine_db.errors import FailedError
from cuisine_db.ops import schedule
from cuisine_db.postgres.runner import run_attached

app = typer.Typer(help="The backup schedule: show, install (cron or systemd), run in the foreground.",
                  no_args_is_help=True)
FormatOption = Annotated[str | None, typer.Option("--format", help="cron or systemd (default: systemd where it "
                                                                     "runs, else cron).")]


@app.command("show")
def show(env: EnvOption = None, format_: FormatOption = None, json: JsonOption = False) -> None:
    """Print the crontab lines or systemd units the schedule installs."""
    s = settings()
    chosen = environment(env)
    kind = schedule.check_format(format_)
    if json:
        print_json({"jobs": schedule.jobs(chosen), "crontab": schedule.crontab(s, chosen),
                    "systemd": schedule.systemd_units(s, chosen)})
        return
    if kind == "cron":
        out.print(schedule.crontab(s, chosen), markup=False, end="")
        return
    for name, text in schedule.systemd_units(s, chosen).items():
        out.print(f"# {name}\n{text}", markup=False)


@app.command("install")
def install(env: EnvOption = None, format_: FormatOption = None,
            target: Annotated[Path | None, typer.Option("--target", help="Where to write (default: "
                                                        "/etc/cron.d/cuisine-db-ENV or /etc/systemd/system).")] = None
            ) -> None:
    """Write the schedule for cron (/etc/cron.d) or systemd (service and timer units)."""
    chosen = environment(env)
    kind = schedule.check_format(format_)
    written = schedule.install(settings(), chosen, kind=kind, target=target)
    for path in written:
        say(f"wrote {path}")
    if kind == "systemd":
        say(f"then: systemctl daemon-reload && systemctl enable --now cuisine-db-{chosen.name}-nightly.timer "
            f"cuisine-db-{chosen.name}-status.timer")


@app.command("run")
def run(env: EnvOption = None,
        job: Annotated[str | None, typer.Option("--job", help="nightly or status (with --once: run it now).")] = None,
        once: Annotated[bool, typer.Option("--once", help="Run --job once, now, and exit with its outcome.")] = False
        ) -> None:
    """Run the schedule in the foreground (containers): each job at its time, UTC, until stopped."""
    s = settings()
    chosen = environment(env)

    def step(argv: list[str], extra: dict[str, str]) -> int:
        say(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: cuisine-db {' '.join(argv[len(program()):])}")
        return run_attached(argv, env=extra)

    if once:
        if job is None:
            raise typer.BadParameter("--once runs one job: give --job nightly or --job status")
        results = schedule.run_job(s, chosen, job, step)
        failed = [r for r in results if r.code != 0]
        if failed:
            raise FailedError(f"job {job}: {' '.join(failed[0].args[:2])} exited {failed[0].code}")
        return
    while True:
        name, when = schedule.due(chosen, datetime.now(UTC))
        if job is not None and name != job:
            name, when = job, schedule.next_run(chosen, job, datetime.now(UTC))
        say(f"{chosen.name}: next job {name} at {when:%Y-%m-%d %H:%M} UTC")
        time.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()))
        schedule.run_job(s, chosen, name, step)

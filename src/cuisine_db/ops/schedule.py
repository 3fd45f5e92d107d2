"""The runbook's schedule as crontab lines, systemd timers, or a foreground loop for containers.

Two jobs per environment: `nightly` at `schedule.full_backup_at` UTC (01:00) — a full backup, then retention
(only after a backup that succeeded), then verification of the newest backup; and `status` every
`schedule.status_every_minutes` (15) — `backup status`, which fails when the full backup or the archived WAL is
late or the archive has a hole (the continuous check). The WAL itself is archived by the server as it goes
(archive_command, archive_timeout = 15min), not by the schedule. Every step is the CLI itself, so each lands in
the journal like a command an operator typed.
"""

from __future__ import annotations

import getpass
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cuisine_db.backup.wal.enable import program
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.ops.journal import journaled

JOBS = ("nightly", "status")
FORMATS = ("cron", "systemd")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    description: str
    steps: list[list[str]]        # CLI arguments after the program


@dataclass(frozen=True, slots=True)
class StepResult:
    args: list[str]
    code: int
    seconds: float


def jobs(env: Environment) -> dict[str, Job]:
    at = env.schedule.full_backup_at
    return {
        "nightly": Job("nightly", f"full backup at {at} UTC, then retention, then verification of the newest",
                       [["backup", "create", "--env", env.name, "--type", "full"],
                        ["backup", "expire", "--env", env.name, "--yes"],
                        ["backup", "verify", "latest", "--env", env.name]]),
        "status": Job("status", f"backup status every {env.schedule.status_every_minutes} min",
                      [["backup", "status", "--env", env.name]]),
    }


def next_run(env: Environment, job: str, now: datetime) -> datetime:
    """The next time (UTC, strictly after `now`) a job is due."""
    now = now.astimezone(UTC)
    if job == "nightly":
        hour, minute = (int(part) for part in env.schedule.full_backup_at.split(":"))
        due = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return due if due > now else due + timedelta(days=1)
    step = env.schedule.status_every_minutes
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = int((now - midnight).total_seconds() // 60)
    return midnight + timedelta(minutes=(minutes // step + 1) * step)


def _command(settings: Settings, args: list[str]) -> str:
    return f"CUISINE_DB_CONFIG={shlex.quote(str(settings.config_path))} " + shlex.join([*program(), *args])


def _job_args(env: Environment, job: str) -> list[str]:
    return ["schedule", "run", "--env", env.name, "--job", job, "--once"]


def crontab(settings: Settings, env: Environment) -> str:
    """A cron.d file (with the user field): times are UTC through CRON_TZ."""
    hour, minute = (int(part) for part in env.schedule.full_backup_at.split(":"))
    step = env.schedule.status_every_minutes
    log = settings.env_dir(env) / "schedule.log"
    every = f"*/{step} * * * *" if step < 60 and 60 % step == 0 else f"0 */{max(1, step // 60)} * * *"
    user = getpass.getuser()
    lines = [
        f"# cuisine-db: the runbook's schedule for {env.name} (cuisine-db schedule install). Times are UTC: cron",
        "# implementations without CRON_TZ (Debian's cron) use the system's zone; the systemd timers do not care.",
        "CRON_TZ=UTC",
        "SHELL=/bin/sh",
        f"{minute} {hour} * * * {user} {_command(settings, _job_args(env, 'nightly'))} >> {shlex.quote(str(log))} 2>&1",
        f"{every} {user} {_command(settings, _job_args(env, 'status'))} >> {shlex.quote(str(log))} 2>&1",
    ]
    return "\n".join(lines) + "\n"


def systemd_units(settings: Settings, env: Environment) -> dict[str, str]:
    """A oneshot service and a timer per job."""
    units = {}
    step = env.schedule.status_every_minutes
    calendars = {"nightly": f"*-*-* {env.schedule.full_backup_at}:00 UTC",
                 "status": f"*:0/{step}" if step < 60 and 60 % step == 0 else f"*-*-* 0/{max(1, step // 60)}:00:00"}
    for name, job in jobs(env).items():
        unit = f"cuisine-db-{env.name}-{name}"
        units[f"{unit}.service"] = (
            f"[Unit]\nDescription=cuisine-db {env.name}: {job.description}\n\n"
            f"[Service]\nType=oneshot\nWorkingDirectory={settings.root}\n"
            f"Environment=CUISINE_DB_CONFIG={settings.config_path}\n"
            f"ExecStart={shlex.join([*program(), *_job_args(env, name)])}\n")
        units[f"{unit}.timer"] = (
            f"[Unit]\nDescription=cuisine-db {env.name}: {job.description}\n\n"
            f"[Timer]\nOnCalendar={calendars[name]}\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n")
    return units


def default_format() -> str:
    return "systemd" if Path("/run/systemd/system").is_dir() else "cron"


def check_format(kind: str | None) -> str:
    """cron or systemd as asked, else what this machine runs; anything else is bad input."""
    if kind is None:
        return default_format()
    if kind not in FORMATS:
        raise UsageError(f"unknown schedule format {kind!r}", hint="format=cron or format=systemd")
    return kind


def install(settings: Settings, env: Environment, *, kind: str | None, target: Path | None = None) -> list[Path]:
    """schedule install, journaled: write the crontab file or the systemd units (`kind` None: what this machine
    runs); return what was written (enabling timers is the operator's:
    `systemctl daemon-reload && systemctl enable --now cuisine-db-ENV-*.timer`)."""
    kind = check_format(kind)
    with journaled(settings, env, "schedule install", {"format": kind, "target": str(target) if target else None}):
        return _install(settings, env, kind, target)


def _install(settings: Settings, env: Environment, kind: str, target: Path | None) -> list[Path]:
    if kind == "cron":
        path = target or Path(f"/etc/cron.d/cuisine-db-{env.name}")
        if path.is_dir():
            path = path / f"cuisine-db-{env.name}"
        path.write_text(crontab(settings, env))
        path.chmod(0o644)
        return [path]
    if kind != "systemd":
        raise UsageError(f"unknown schedule format {kind!r}", hint="cron or systemd")
    folder = target or Path("/etc/systemd/system")
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder for systemd units")
    written = []
    for name, text in systemd_units(settings, env).items():
        (folder / name).write_text(text)
        written.append(folder / name)
    return written


def run_job(settings: Settings, env: Environment, name: str,
            runner: Callable[[list[str], dict[str, str]], int]) -> list[StepResult]:
    """Run a job's steps in order; the nightly retention and verification need the backup to have succeeded
    for retention (verification of the newest backup runs either way: yesterday's is still worth checking)."""
    job = jobs(env).get(name)
    if job is None:
        raise UsageError(f"unknown job {name!r}", hint=f"jobs: {', '.join(JOBS)}")
    results: list[StepResult] = []
    for index, args in enumerate(job.steps):
        if name == "nightly" and index == 1 and results and results[0].code != 0:
            continue  # no retention after a failed backup: never shrink the history on a bad night
        started = time.monotonic()
        code = runner([*program(), *args], {"CUISINE_DB_CONFIG": str(settings.config_path)})
        results.append(StepResult(args, code, round(time.monotonic() - started, 3)))
    return results


def due(env: Environment, now: datetime) -> tuple[str, datetime]:
    """The job due next and when."""
    name = min(JOBS, key=lambda job: next_run(env, job, now))
    return name, next_run(env, name, now)

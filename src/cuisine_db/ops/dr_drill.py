"""make dr-drill env=E: the runbook's Complete Database Failure procedure, rehearsed on a scratch copy of E.

E itself is never touched: its newest full backup is restored into a throwaway local cluster (`drill-<E>`) of the
same major version, which reads E's repository and WAL archive. The steps are the runbook's, through the same
services as their make targets, each journaled on the scratch environment and linked to an incident opened for the
drill (severity 4, never announced on the webhook: nobody needs paging for a rehearsal):

    incident-create, maintenance-mode enable, db-restore backup=latest, db-apply-logs, db-verify-integrity,
    maintenance-mode disable

The figures it reports are the ones an outage would have: the recovery time (incident opened to maintenance mode
off) and the data-loss window (the moment E "failed", that is when the drill began, minus the last transaction
the archive gave back). Afterwards the scratch cluster and its state are removed; its journal stays, so the
incident's timeline can still be read, and the incident (resolved) is copied to E's repository like any other.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.findings import Finding
from cuisine_db.ops import incidents
from cuisine_db.ops.journal import Entry, journaled

Notify = Callable[[str], None]
SEVERITY = 4


@dataclass(frozen=True, slots=True)
class DrillStep:
    command: str  # as the runbook writes it
    seconds: float


@dataclass(frozen=True, slots=True)
class DrillReport:
    env: str
    scratch: str
    backup: str
    incident: str
    failure_at: datetime  # when the drill began: the moment E "failed"
    recovery_seconds: float  # incident opened .. maintenance mode off
    reached_lsn: str | None
    reached_time: datetime | None  # the last transaction the archive gave back
    archive_end: str | None
    data_loss_seconds: float | None  # failure_at - reached_time
    steps: list[DrillStep] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)  # what db-verify-integrity found on the restored copy
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def scratch_name(env: Environment) -> str:
    return f"drill-{env.name}"[:31]


def _scratch(settings: Settings, env: Environment, major: int) -> tuple[Settings, Environment]:
    """The project's settings plus a local environment that reads E's repository, on a free port."""
    from cuisine_db.postgres.scratch import environment_copy

    return environment_copy(settings, env, scratch_name(env), major=major, what="dr-drill",
                            server_settings={"fsync": False}, pg_bin=env.pg_bin if env.is_local else None)


@contextmanager
def _cleaned(settings: Settings, env: Environment) -> Iterator[None]:
    """Remove the scratch cluster and its state whatever happens; keep its journal (the incident's timeline)."""
    from cuisine_db.postgres.local import cluster_for

    try:
        yield
    finally:
        cluster_for(settings, env).destroy()
        home = settings.env_dir(env)
        for path in home.iterdir() if home.is_dir() else []:
            if path.name != "journal.jsonl":
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def run(settings: Settings, env: Environment, *, notify: Notify = lambda _: None,
        show: Callable[[DrillReport], None] = lambda _: None) -> DrillReport:
    """make dr-drill, journaled as `dr-drill` on `env` with the drill's incident and figures: the Complete Database
    Failure procedure rehearsed on a scratch copy, measured. `show` gets the report before the journal line is
    written; integrity problems in the restored copy then fail the drill (exit 1)."""
    with journaled(settings, env, "dr-drill", {}) as entry:
        report = _rehearse(settings, env, notify)
        entry.details.update(incident=report.incident, backup=report.backup, recovery_seconds=report.recovery_seconds,
                             data_loss_seconds=report.data_loss_seconds, problems=len(report.problems))
        show(report)
        if not report.ok:
            raise FailedError(f"the restored copy of {report.env} has {len(report.problems)} integrity problem(s)",
                              hint="see the findings above: the backups or the archive need attention")
    return report


def _rehearse(settings: Settings, env: Environment, notify: Notify) -> DrillReport:
    from cuisine_db.backup import backup_names, catalog, restore_service
    from cuisine_db.ops import maintenance
    from cuisine_db.ops.incident_copy import copy_incident
    from cuisine_db.ops.integrity import verify_integrity
    from cuisine_db.postgres.local import ensure_up

    failure_at = datetime.now(UTC)
    full_hint = (f"make db-backup env={env.name} type=full, with WAL archiving on (make db-wal-enable env={env.name}): "
                 "the drill replays the archive onto a full backup")
    try:
        latest = catalog.resolve(settings, env, "latest", purpose="restore")
    except UsageError as exc:
        raise UsageError(exc.message, hint=full_hint) from None
    if latest.manifest.type not in backup_names.PHYSICAL_TYPES:
        raise UsageError(f"the newest whole-database backup of {env.name} is {latest.manifest.name}, a logical one",
                         hint=full_hint)
    drill_settings, scratch = _scratch(settings, env, latest.manifest.server_major)
    notify(f"{env.name}: rehearsing Complete Database Failure on a scratch copy ({scratch.name}, PostgreSQL "
           f"{scratch.postgres_version}, port {scratch.port}); {env.name} itself is not touched")
    steps: list[DrillStep] = []

    @contextmanager
    def step(command: str, journal_as: str | None, arguments: dict[str, object]) -> Iterator[Entry]:
        """One runbook step, timed and journaled on the scratch copy (journal_as None: the service journals it)."""
        notify(f"drill: make {command}")
        started = time.monotonic()
        if journal_as is None:
            yield Entry()
        else:
            with journaled(drill_settings, scratch, journal_as, arguments) as entry:
                yield entry
        steps.append(DrillStep(command, round(time.monotonic() - started, 3)))

    ensure_up(drill_settings, scratch)
    with _cleaned(drill_settings, scratch):
        clock = time.monotonic()
        description = f"DR drill: complete database failure of {env.name}, rehearsed on a scratch copy"
        with step(f'incident-create severity={SEVERITY} description="{description}"', "incident create",
                  {"severity": SEVERITY, "description": description, "env": scratch.name}):
            incident = incidents.open_incident(drill_settings, SEVERITY, description, scratch.name)
        finished = False
        try:
            reason = "DR drill: database restoration in progress"
            with step(f'maintenance-mode enable reason="{reason}"', None, {}):
                maintenance.enable_journaled(drill_settings, scratch, reason)
            with step(f"db-restore backup=latest (= {latest.manifest.name})", None, {}):
                restore_service.restore_database(drill_settings, scratch, latest.manifest.name, open_now=False,
                                                 notify=notify)
            with step("db-apply-logs", None, {}):
                opened = restore_service.apply_logs(drill_settings, scratch, notify=notify)
            with step("db-verify-integrity", "db-verify-integrity", {}) as entry:
                verified = verify_integrity(drill_settings, scratch, baseline_env=env)  # E's backups' row counts
                entry.details.update(findings=len(verified.problems), checked=verified.checked)
            with step("maintenance-mode disable", None, {}):
                maintenance.disable_journaled(drill_settings, scratch)
            recovery = round(time.monotonic() - clock, 3)
            finished = True
        finally:
            note = "drill finished" if finished else "drill stopped by an error (see the timeline)"
            with journaled(drill_settings, scratch, "incident resolve", {"incident": incident.id}):
                incidents.resolve(drill_settings, incident.id, f"{note}, the scratch copy was removed")
            copied = copy_incident(drill_settings, incident.id)
    loss = (failure_at - opened.reached_time).total_seconds() if opened.reached_time else None
    notes = [*verified.notes, *opened.notes]
    notes += [f"the drill's incident was not copied to {c.repository}: {c.detail}" for c in copied if not c.copied]
    return DrillReport(env=env.name, scratch=scratch.name, backup=latest.manifest.name, incident=incident.id,
                       failure_at=failure_at, recovery_seconds=recovery, reached_lsn=opened.reached_lsn,
                       reached_time=opened.reached_time, archive_end=opened.archive_end,
                       data_loss_seconds=round(loss, 3) if loss is not None else None, steps=steps,
                       problems=verified.problems, notes=notes)

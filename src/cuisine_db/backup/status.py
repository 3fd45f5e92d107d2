"""`cuisine-db backup status`: is the runbook's promise kept? A full backup within the last 26 hours (daily at
01:00 UTC, with room for a slow night), and transaction logs archived within the last 16 minutes (every 15),
with no hole between the newest backup and the archive's end. Exit 1 otherwise: for a scheduler or a monitor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cuisine_db.backup import catalog, watermark
from cuisine_db.backup.backup_names import PHYSICAL_TYPES
from cuisine_db.backup.wal import status as wal_status
from cuisine_db.backup.wal.status import WalStatus
from cuisine_db.config import Environment, Settings
from cuisine_db.findings import Finding


@dataclass(frozen=True, slots=True)
class BackupStatus:
    env: str
    newest_full: str | None
    newest_full_at: datetime | None
    full_age_hours: float | None
    wal: WalStatus
    findings: list[Finding] = field(default_factory=list)


def full_backup_age(newest: datetime | None, env: Environment, now: datetime) -> Finding | None:
    """No physical backup, or the newest one older than max_full_backup_age_hours (26 h by default)."""
    limit = timedelta(hours=env.wal.max_full_backup_age_hours)
    if newest is None:
        return Finding("full backup", "error", env.name, "there is no full backup: no point-in-time recovery is "
                       "possible", f"make db-backup env={env.name} type=full")
    if now - newest <= limit:
        return None
    hours = (now - newest).total_seconds() / 3600
    return Finding("full backup", "error", env.name, f"the newest full backup is {hours:.1f} h old (limit "
                   f"{env.wal.max_full_backup_age_hours:g} h): the nightly one did not run or failed",
                   f"make db-backup env={env.name} type=full; cuisine-db schedule show --env {env.name}")


def untrusted(entries: list[catalog.BackupEntry], env: Environment) -> list[Finding]:
    """Backups in the repository that are not trusted: dated in the future or rolled back is an error (someone
    wrote to the repository, or a clock is wrong), any other untrusted one a warning."""
    found = []
    for entry in entries:
        if not (entry.problem or "").startswith(catalog.UNTRUSTED):
            continue
        why = (entry.problem or "")[len(catalog.UNTRUSTED):]
        severity = "error" if why.startswith(("dated in the future", "rolled back", "rollback check")) else "warning"
        found.append(Finding("untrusted backup", severity, entry.name, f"{entry.name} is untrusted: {why}",
                             "docs/security.md: check who can write to the repository; it is never used"))
    return found


def damaged_watermark(settings: Settings, env: Environment) -> Finding | None:
    """The local high-water mark there but damaged: the rollback check cannot run, so no backup is trusted."""
    mark = watermark.read(settings, env)
    if not isinstance(mark, watermark.Unreadable):
        return None
    return Finding("backup watermark", "error", mark.where, f"{mark.where} is damaged ({mark.why}): no backup of "
                   f"{env.name} can be checked against rollback, so none is trusted, `latest` or restorable",
                   f"docs/security.md: check the repository, then cuisine-db backup rebuild-watermark --env {env.name}")


def damaged_records(entries: list[catalog.BackupEntry]) -> list[Finding]:
    """Verification and test-restore records that are there but damaged: shown, never taken for "never"."""
    return [Finding("damaged record", "warning", entry.name, f"{damage.where} is damaged: {damage.why}",
                    "db-verify-backup (verification.json) or db-test-restore (test-restore.json) of "
                    f"backup={entry.name} writes it again")
            for entry in entries for damage in entry.damaged]


def status(settings: Settings, env: Environment, *, now: datetime | None = None) -> BackupStatus:
    now = now or datetime.now(UTC)
    entries = catalog.list_backups(settings, env, include_incomplete=True)
    physical = [entry for entry in entries if entry.complete and entry.type in PHYSICAL_TYPES]
    newest = physical[-1] if physical else None
    newest_at = newest.manifest.finished_at if newest and newest.manifest else None
    wal = wal_status.status(settings, env, now=now)
    findings = ([finding for finding in [damaged_watermark(settings, env), full_backup_age(newest_at, env, now)]
                 if finding] + untrusted(entries, env)
                + damaged_records(entries) + wal.findings)
    age = round((now - newest_at).total_seconds() / 3600, 2) if newest_at else None
    return BackupStatus(env.name, newest.name if newest else None, newest_at, age, wal, findings)

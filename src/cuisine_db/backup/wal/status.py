"""`cuisine-db wal status`: is the archive keeping the runbook's 15-minute promise, and could it be replayed?

What the server says (pg_stat_archiver: last archived, failures, how many finished segments wait) and what the
repository holds (last archived segment and its age, holes from the oldest physical backup to the end,
files stored twice, refusals the push recorded). Each check is a small function returning a Finding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import class_row

from cuisine_db import sql as queries
from cuisine_db.backup import catalog
from cuisine_db.backup.wal import access as wal_access
from cuisine_db.backup.wal import archive, areas, enable, push, wal_names
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UnavailableError
from cuisine_db.findings import Finding
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage import open_repository


@dataclass(frozen=True, slots=True)
class ArchiverStats:
    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    current_wal: str | None
    insert_lsn: str | None
    archive_mode: str
    archive_command: str
    archive_timeout: str
    wal_segment_size: int
    in_recovery: bool
    now: datetime

    def waiting(self) -> tuple[int, int] | None:
        """(finished segments not archived yet, bytes of WAL written since the last archived segment)."""
        if not self.insert_lsn or not self.last_archived_wal or wal_names.is_history(self.last_archived_wal):
            return None
        last = wal_names.segment_number(self.last_archived_wal[:24], self.wal_segment_size)
        insert = wal_names.parse_lsn(self.insert_lsn)
        pending = max(0, insert - wal_names.segment_start(last + 1, self.wal_segment_size))
        return max(0, wal_names.segment_of(insert, self.wal_segment_size) - last - 1), pending


@dataclass(frozen=True, slots=True)
class WalStatus:
    env: str
    repository: str
    archived: int
    timelines: list[int]
    last_archived: str | None
    last_archived_at: datetime | None
    checked_from: str | None
    archive_end: str | None
    missing: list[str]
    duplicates: list[str]
    server: ArchiverStats | None
    behind: int | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if not self.archived:
            return f"nothing archived in {self.repository}"
        age = f", {_age(self.last_archived_at)} ago" if self.last_archived_at else ""
        behind = f"; {self.behind} finished segment(s) waiting on the server" if self.behind else ""
        return (f"{self.archived} files archived in {self.repository}, timelines "
                f"{', '.join(map(str, self.timelines))}; last {self.last_archived}{age}{behind}")


def _age(moment: datetime) -> str:
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def server_stats(settings: Settings, env: Environment) -> ArchiverStats | None:
    """The archiver's view, or None when the server is down or unreachable (the repository still speaks)."""
    try:
        with connect(settings, env, "wal status", purpose="monitoring", start=False) as conn, \
                conn.cursor(row_factory=class_row(ArchiverStats)) as cursor:
            return cursor.execute(queries.load("pitr/archiver")).fetchone()
    except (UnavailableError, psycopg.Error):
        return None


def archiving_off(stats: ArchiverStats | None, env: Environment) -> Finding | None:
    if stats is None or (stats.archive_mode != "off" and "wal push" in stats.archive_command):
        return None
    what = "archive_mode is off" if stats.archive_mode == "off" else \
        f"archive_command is not cuisine-db's ({stats.archive_command or 'empty'})"
    return Finding("archiving", "error", env.name, what + ": committed transactions are not being archived",
                   f"cuisine-db wal enable --env {env.name} --restart")


def archiver_failing(stats: ArchiverStats | None, env: Environment) -> Finding | None:
    if stats is None or not stats.failed_count or stats.last_failed_time is None:
        return None
    if stats.last_archived_time is not None and stats.last_archived_time > stats.last_failed_time:
        return None
    return Finding("archiver", "error", stats.last_failed_wal or env.name,
                   f"archiving {stats.last_failed_wal} has failed since {stats.last_failed_time:%H:%M:%S} UTC "
                   f"({stats.failed_count} failures in all); WAL piles up in pg_wal",
                   "read the server log for 'cuisine-db wal push' lines; cuisine-db wal check as the server's user")


def archiver_behind(behind: int | None, env: Environment, limit: int = 2) -> Finding | None:
    if behind is None or behind <= limit:
        return None
    return Finding("archiver lag", "warning", env.name, f"{behind} finished segments wait to be archived",
                   "look for a slow repository; wal.push_batch and push_threads let each call push more")


def stale(stats: ArchiverStats | None, last_at: datetime | None, env: Environment, now: datetime) -> Finding | None:
    """The newest archived WAL is older than the limit while the server has written WAL since (an idle server
    writes none, and owes nothing); without the server, the archive's age alone decides."""
    limit = timedelta(minutes=env.wal.max_archive_age_minutes)
    waiting = stats.waiting() if stats is not None else None
    seen = stats.last_archived_time if stats is not None and stats.last_archived_time else last_at
    if seen is None or now - seen <= limit:
        return None
    if waiting is not None and waiting[1] == 0:
        return None
    return Finding("archive age", "error", env.name,
                   f"the newest archived WAL is {_age(seen)} old (limit {env.wal.max_archive_age_minutes:g} min)"
                   + (f" and {waiting[1]:,} bytes of WAL wait" if waiting else ""),
                   f"cuisine-db wal status --env {env.name}; check the server's log and the repository")


def holes(missing: list[str], env: Environment, end: str | None, *, newest: bool = True) -> Finding | None:
    """Segments missing between a backup and the archive's end: from the newest backup, the latest restore
    loses everything after the hole (error); only before it, older backups replay only so far (warning)."""
    if not missing:
        return None
    if newest:
        return Finding("archive holes", "error", missing[0],
                       f"{len(missing)} segment(s) missing after the newest physical backup, before {end}: a replay "
                       f"would stop at {missing[0]} and lose everything after it",
                       f"take a full backup now (make db-backup env={env.name} type=full)")
    return Finding("archive holes", "warning", missing[0],
                   f"{len(missing)} segment(s) missing before the newest physical backup: older backups replay "
                   f"only up to {missing[0]}", "nothing to do for the latest backup; retention removes the older ones")


def planted(foreign: list[str], env: Environment) -> Finding | None:
    """Objects under WAL file names that no record signed by a trusted key names: never fetched, never in the way."""
    if not foreign:
        return None
    return Finding("foreign objects", "warning", foreign[0],
                   f"{len(foreign)} WAL file name(s) hold copies no trusted record names (planted by someone with "
                   "write access to the repository, or archived before records were signed): wal fetch never "
                   "takes them", "docs/security.md: find who can write to the repository; remove them by hand")


def doubled(names_: list[str], env: Environment) -> Finding | None:
    if not names_:
        return None
    return Finding("archive conflicts", "error", names_[0],
                   f"{len(names_)} file(s) archived twice with different content",
                   "two servers archive into one place: stop the wrong one, then remove its copies by hand")


def refusals(settings: Settings, env: Environment, now: datetime) -> Finding | None:
    """Conflicts `wal push` refused in the last day (it records them in its spool folder)."""
    path = enable.spool_dir(settings, env) / push.FAILURES
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    recent = []
    for line in lines[-200:]:
        try:
            entry = json.loads(line)
            at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError):
            continue
        if entry.get("conflict") and now - at < timedelta(days=1):
            recent.append(entry)
    if not recent:
        return None
    return Finding("push refused", "error", recent[-1]["name"], recent[-1]["error"],
                   "another server archives into this environment's archive: find it and stop its archiving")


def _starts(settings: Settings, env: Environment, listed: list[archive.Archived]
            ) -> tuple[str | None, str | None, int]:
    """Where replays begin: the oldest and the newest complete physical backup's last segment (else the first
    archived segment for both); and the segment size."""
    listed_areas = areas.read(settings.env_dir(env))
    system = str(listed_areas[-1]["system_identifier"]) if listed_areas else None  # an upgraded cluster's own
    physical = [entry.manifest for entry in catalog.list_backups(settings, env)
                if entry.manifest is not None and entry.type in ("full", "incremental")
                and (system is None or str(entry.manifest.system_identifier) == system)]
    if physical:
        size = int(physical[-1].dump.get("wal_segment_size", wal_names.DEFAULT_SEGMENT_SIZE))
        return physical[0].dump.get("stop_wal"), physical[-1].dump.get("stop_wal"), size
    segments = [item.name for item in listed if wal_names.is_segment(item.name)]
    first = segments[0] if segments else None
    return first, first, wal_names.DEFAULT_SEGMENT_SIZE


def status(settings: Settings, env: Environment, *, now: datetime | None = None) -> WalStatus:
    """The archive of `env` as the server and the repository see it, with every finding."""
    now = now or datetime.now(UTC)
    repository = open_repository(settings, env)
    area = areas.current(env.name, settings.env_dir(env))
    everything = archive.list_archive(repository, area)
    owned = archive.ownership(repository, area, everything,
                              wal_access.load(settings.config_path.resolve(), env.name).trust())
    # Copies no trusted record names fill no hole and end no archive.
    listed = [item for item in everything if item.name not in owned.orphans]
    stats = server_stats(settings, env)
    oldest, start, size = _starts(settings, env, listed)
    if stats is not None:
        size = stats.wal_segment_size
    covered = older = None
    findings: list[Finding | None] = []
    if start is not None and oldest is not None and listed:
        try:
            switches = archive.newest_history(repository, listed, age_keys.identities(settings, [env]))
        except CuisineDbError as exc:
            switches = []
            findings.append(Finding("history", "warning", env.name, f"timeline history unreadable: {exc.message}",
                                    "check backup.identity_file"))
        covered = archive.coverage(listed, start, switches, size)
        older = archive.coverage(listed, oldest, switches, size)
        findings.append(holes([m for m in older.missing if m < start], env, start, newest=False))
    segments = [item for item in listed if wal_names.is_segment(item.name)]
    last = segments[-1] if segments else None
    newest_at = max((item.modified for item in listed), default=None)
    waiting = stats.waiting() if stats is not None else None
    behind = waiting[0] if waiting else None
    duplicates = owned.disagreeing
    findings += [archiving_off(stats, env), archiver_failing(stats, env), archiver_behind(behind, env),
                 stale(stats, newest_at, env, now),
                 holes(covered.missing if covered else [], env, covered.end if covered else None),
                 doubled(duplicates, env), planted(owned.foreign, env), refusals(settings, env, now)]
    if not listed and (stats is None or stats.archive_mode != "off"):
        findings.append(Finding("archive", "error", env.name, "nothing has been archived yet",
                                f"cuisine-db wal enable --env {env.name}; then SELECT pg_switch_wal() to test it"))
    return WalStatus(
        env=env.name, repository=repository.url, archived=len(listed),
        timelines=sorted({wal_names.timeline(item.name) for item in listed}),
        last_archived=last.name if last else None, last_archived_at=newest_at,
        checked_from=start, archive_end=covered.end if covered else None,
        missing=covered.missing if covered else [], duplicates=duplicates, server=stats, behind=behind,
        findings=[finding for finding in findings if finding is not None])

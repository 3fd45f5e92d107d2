"""Retention: grandfather-father-son per environment and backup type, and the removal of what it lets go.

A backup is kept when it is the newest of one of the `daily` most recent UTC days that have a backup, of one
of the `weekly` most recent ISO weeks, or of one of the `monthly` most recent months; plus whatever a kept
backup depends on (an incremental's base, of the other type). The newest backup always stays, so the only
backup is never deleted, and a backup without a manifest (being written) is never a candidate: only abandoned
ones, older than `incomplete_after_hours`, are cleared away. Archived WAL is kept from the oldest kept
physical backup's start on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cuisine_db.backup import catalog
from cuisine_db.backup.catalog import BackupEntry
from cuisine_db.backup.manifest import MANIFEST, prefix
from cuisine_db.backup.names import PHYSICAL_TYPES
from cuisine_db.backup.wal import archive
from cuisine_db.backup.wal import names as wal_names
from cuisine_db.backup.wal.archive import Archived
from cuisine_db.config import Environment, Retention, Settings
from cuisine_db.storage import Repository, open_repository


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    taken_at: datetime
    depends_on: str | None = None


def plan(backups: Sequence[Candidate], policy: Retention) -> dict[str, list[str]]:
    """Which backups to keep, each with the rules that keep it; every other one may go."""
    newest_first = sorted(backups, key=lambda b: (b.taken_at, b.name), reverse=True)
    keep: dict[str, list[str]] = defaultdict(list)

    def rule(label: str, count: int, bucket: Callable[[datetime], Hashable]) -> None:
        seen: set[Hashable] = set()
        for backup in newest_first:
            key = bucket(backup.taken_at.astimezone(UTC))
            if key in seen:
                continue
            if len(seen) >= count:
                return
            seen.add(key)
            keep[backup.name].append(label)

    rule("daily", policy.daily, lambda at: at.date())
    rule("weekly", policy.weekly, lambda at: tuple(at.isocalendar())[:2])
    rule("monthly", policy.monthly, lambda at: (at.year, at.month))
    if newest_first:
        keep[newest_first[0].name].append("newest")
    by_name = {backup.name: backup for backup in backups}
    for name in list(keep):
        parent = by_name[name].depends_on
        while parent is not None and parent in by_name:
            keep[parent].append(f"needed by {name}")
            parent = by_name[parent].depends_on
    return {name: sorted(set(reasons), key=reasons.index) for name, reasons in keep.items()}


@dataclass(frozen=True, slots=True)
class ExpireReport:
    env: str
    repository: str
    dry_run: bool
    kept: dict[str, list[str]] = field(default_factory=dict)
    expired: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    temporaries: int = 0
    # WAL older than every kept physical backup's start (issue 4): removed, or what would be.
    wal_expired: int = 0
    wal_bytes: int = 0
    wal_kept_from: str | None = None


def expire(settings: Settings, env: Environment, *, dry_run: bool = False,
           now: datetime | None = None) -> ExpireReport:
    """Apply the environment's retention to its repository (or, dry run, say what would go)."""
    policy = env.backup.retention
    repository = open_repository(settings, env)
    entries = catalog.scan(repository, env=env.name)
    now = now or datetime.now(UTC)
    grace = timedelta(hours=policy.incomplete_after_hours)
    by_type: dict[str, list[BackupEntry]] = defaultdict(list)
    abandoned, damaged, in_progress = [], [], []
    for entry in entries:
        if entry.manifest is not None:
            by_type[entry.type].append(entry)
        elif entry.problem:
            damaged.append(entry.name)  # never deleted automatically: a person should look
        elif now - entry.taken_at > grace:
            abandoned.append(entry.name)
        else:
            in_progress.append(entry.name)
    kept: dict[str, list[str]] = {}
    for group in by_type.values():
        decided = plan([Candidate(e.name, e.taken_at, e.manifest.depends_on if e.manifest else None)
                        for e in group], policy)
        kept.update(decided)
    # An incremental (one type) builds on a full backup (another): its whole chain stays with it.
    parents = {e.name: e.manifest.depends_on for e in entries if e.manifest is not None}
    for name in list(kept):
        parent = parents.get(name)
        while parent is not None and parent in parents:
            kept.setdefault(parent, [])
            if f"needed by {name}" not in kept[parent]:
                kept[parent].append(f"needed by {name}")
            parent = parents.get(parent)
    expired = [entry.name for group in by_type.values() for entry in group if entry.name not in kept]
    wal_going, kept_from = _expired_wal(repository, env, [e for e in entries if e.name in kept])
    temporaries = 0
    if not dry_run:
        objects = {entry.name: entry.objects for entry in entries}
        going = sorted(expired) + abandoned
        # Manifests go first: from then on those backups no longer count, whatever happens next.
        repository.delete([prefix(name) + MANIFEST for name in going])
        repository.delete([info.key for name in going for info in objects[name]])
        repository.delete([item.key for item in wal_going])
        temporaries = repository.cleanup(grace)
    return ExpireReport(env.name, repository.url, dry_run, dict(sorted(kept.items())), sorted(expired), abandoned,
                        damaged, in_progress, temporaries, len(wal_going), sum(item.size for item in wal_going),
                        kept_from)


def _expired_wal(repository: Repository, env: Environment, kept: list[BackupEntry]
                 ) -> tuple[list[Archived], str | None]:
    """WAL no kept physical backup needs: segments before the oldest one's start (any timeline: replay from a
    backup never reads behind its start). History files always stay (tiny, and timelines need them). Without a
    kept physical backup, nothing goes: there is no base to measure from."""
    physical = [e.manifest for e in kept if e.manifest is not None and e.type in PHYSICAL_TYPES
                and e.manifest.dump.get("start_wal")]
    if not physical:
        return [], None
    size = int(physical[0].dump.get("wal_segment_size", wal_names.DEFAULT_SEGMENT_SIZE))
    first = min(physical, key=lambda m: wal_names.segment_number(m.dump["start_wal"], size))
    start = wal_names.segment_number(first.dump["start_wal"], size)
    going = [item for item in archive.list_archive(repository, env.name)
             if not wal_names.is_history(item.name) and wal_names.segment_number(item.name[:24], size) < start]
    return going, first.dump["start_wal"]

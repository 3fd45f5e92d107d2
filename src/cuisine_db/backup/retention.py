"""Retention: grandfather-father-son per environment and backup type, the backups no policy may take, and the
removal of what it lets go — previewed, and confirmed on a protected environment.

A backup is kept when it is the newest of one of the `daily` most recent UTC days that have a backup, of one
of the `weekly` most recent ISO weeks, or of one of the `monthly` most recent months; plus whatever a kept
backup depends on (an incremental's base, of the other type). Whatever the counts say, these always stay:

- the newest backup of each type (so the only backup is never deleted);
- the newest backup that passed verification, and the newest one whose test restore passed: the last ones known
  to be good;
- the newest physical backup, and the base of the point-in-time window the policy promises (the last `daily`
  days): the newest physical backup that was consistent at the window's start, or the oldest one when none is
  that old. Archived WAL is kept from the oldest kept physical backup's start on, so every point from that
  base to now stays reachable;
- after a major-version upgrade (a new system identifier, its own WAL archive area: backup/wal/areas.py), the last
  full backup from before it, with its WAL, for as long as the upgrade is within the promised window. WAL is
  measured per area against the kept backups of that area's cluster; a superseded area with no kept backup left
  goes entirely.

A backup without a manifest (being written) is never a candidate: only abandoned ones, older than
`incomplete_after_hours`, are cleared away. Nothing is deleted before the plan has been shown, and on a protected
environment before the operator typed the environment's name (or passed --yes: the schedule does).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cuisine_db.backup import catalog
from cuisine_db.backup.backup_names import PHYSICAL_TYPES
from cuisine_db.backup.catalog import BackupEntry
from cuisine_db.backup.manifest import MANIFEST, Manifest, prefix
from cuisine_db.backup.wal import archive, areas, wal_names
from cuisine_db.backup.wal.archive import Archived
from cuisine_db.config import Environment, Retention, Settings
from cuisine_db.ops import confirmation
from cuisine_db.storage import Repository, open_repository

NEWEST_VERIFIED = "newest verified"
NEWEST_TESTED = "newest test-restored"
NEWEST_PHYSICAL = "newest physical (point-in-time base)"


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    taken_at: datetime
    depends_on: str | None = None
    type: str = "logical"
    verified: bool = False  # its last verification passed
    test_restored: bool = False  # its last test restore passed
    consistent_at: datetime | None = None  # physical: from when it is a point-in-time base (its end)
    system: str | None = None  # the cluster's system identifier (a major-version upgrade changes it)

    @property
    def physical(self) -> bool:
        return self.type in PHYSICAL_TYPES

    @property
    def base_from(self) -> datetime:
        return self.consistent_at or self.taken_at


def plan(backups: Sequence[Candidate], policy: Retention) -> dict[str, list[str]]:
    """Which backups of one type to keep by the calendar, each with the rules that keep it."""
    newest_first = sorted(backups, key=lambda b: (b.taken_at, b.name), reverse=True)
    keep: dict[str, list[str]] = defaultdict(list)

    def rule(label: str, count: int, bucket: Callable[[datetime], str]) -> None:
        seen: set[Hashable] = set()
        for backup in newest_first:
            key = bucket(backup.taken_at.astimezone(UTC))
            if key in seen:
                continue
            if len(seen) >= count:
                return
            seen.add(key)
            keep[backup.name].append(f"{label} {key}")  # the slot it fills: "daily 2026-12-05"

    rule("daily", policy.daily, lambda at: f"{at:%Y-%m-%d}")
    rule("weekly", policy.weekly, lambda at: "{}-W{:02d}".format(*at.isocalendar()[:2]))
    rule("monthly", policy.monthly, lambda at: f"{at:%Y-%m}")
    if newest_first:
        keep[newest_first[0].name].append("newest")
    _with_chains(keep, backups)
    return {name: sorted(set(reasons), key=reasons.index) for name, reasons in keep.items()}


def window_start(policy: Retention, now: datetime) -> datetime:
    """The oldest point the policy promises to recover to: `daily` days back."""
    return now - timedelta(days=policy.daily)


def decide(backups: Sequence[Candidate], policy: Retention, now: datetime,
           upgraded: Sequence[tuple[str, datetime]] = ()) -> dict[str, list[str]]:
    """Every backup to keep, with why: the calendar per type, then the protected ones, then what kept ones need.
    `upgraded`: (system identifier, when it was upgraded away) of every cluster an upgrade replaced."""
    keep: dict[str, list[str]] = defaultdict(list)
    by_type: dict[str, list[Candidate]] = defaultdict(list)
    for backup in backups:
        by_type[backup.type].append(backup)
    for group in by_type.values():
        for name, reasons in plan(group, policy).items():
            keep[name] += reasons

    def newest(label: str, chosen: Sequence[Candidate]) -> None:
        if chosen:
            keep[max(chosen, key=lambda b: (b.taken_at, b.name)).name].append(label)

    newest(NEWEST_VERIFIED, [b for b in backups if b.verified])
    newest(NEWEST_TESTED, [b for b in backups if b.test_restored])
    physical = [b for b in backups if b.physical]
    newest(NEWEST_PHYSICAL, physical)
    if physical:
        start = window_start(policy, now)
        covering = [b for b in physical if b.base_from <= start]
        if covering:
            base = max(covering, key=lambda b: (b.base_from, b.name))
        else:
            base = min(physical, key=lambda b: (b.base_from, b.name))
        keep[base.name].append(f"point-in-time base of the promised window (from {start:%Y-%m-%d %H:%M} UTC)")
    for system, until in upgraded:
        if until >= window_start(policy, now):
            newest(f"last full backup before the upgrade of {until:%Y-%m-%d %H:%M} UTC (within the window)",
                   [b for b in backups if b.type == "full" and b.system == system])
    _with_chains(keep, backups)
    return {name: sorted(set(reasons), key=reasons.index) for name, reasons in keep.items()}


def _with_chains(keep: dict[str, list[str]], backups: Sequence[Candidate]) -> None:
    """An incremental builds on another backup (a full one, of another type): its whole chain stays with it."""
    by_name = {backup.name: backup for backup in backups}
    for name in list(keep):
        parent = by_name[name].depends_on if name in by_name else None
        while parent is not None and parent in by_name:
            if f"needed by {name}" not in keep[parent]:
                keep[parent].append(f"needed by {name}")
            parent = by_name[parent].depends_on


def oldest_point(backups: Sequence[Candidate]) -> datetime | None:
    """The oldest point a point-in-time recovery can reach with these backups (and the archive after them)."""
    physical = [b.base_from for b in backups if b.physical]
    return min(physical) if physical else None


@dataclass(frozen=True, slots=True)
class ExpireReport:
    """What retention keeps (and why), what goes, the WAL that goes, and the point-in-time window before and after.
    `dry_run`: nothing was deleted (a preview, or the plan shown before asking)."""

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
    types: dict[str, str] = field(default_factory=dict)  # every complete backup's type
    wal_first: str | None = None  # the oldest and newest WAL file that goes
    wal_last: str | None = None
    window_before: datetime | None = None  # oldest restorable point (a physical backup's end) now ...
    window_after: datetime | None = None  # ... and once the expired ones are gone
    promised_from: datetime | None = None  # the start of the window the policy promises
    protected: bool = False

    @property
    def deletes(self) -> bool:
        return bool(self.expired or self.abandoned or self.wal_expired)


@dataclass(frozen=True, slots=True)
class _Plan:
    report: ExpireReport
    objects: dict[str, tuple[str, ...]]
    wal: list[Archived]


def _candidate(entry: BackupEntry, manifest: Manifest) -> Candidate:
    consistent = None
    if entry.type in PHYSICAL_TYPES:
        stop = manifest.dump.get("stop_time")
        consistent = datetime.fromisoformat(stop) if stop else manifest.finished_at
    return Candidate(entry.name, entry.taken_at, manifest.depends_on, entry.type,
                     verified=entry.verification is not None and entry.verification.ok,
                     test_restored=entry.test_restore is not None and entry.test_restore.ok,
                     consistent_at=consistent,
                     system=str(manifest.system_identifier) if manifest.system_identifier is not None else None)


def _plan(settings: Settings, env: Environment, now: datetime) -> _Plan:
    policy = env.backup.retention
    repository = open_repository(settings, env)
    entries = catalog.trusted_scan(settings, env, repository)
    grace = timedelta(hours=policy.incomplete_after_hours)
    candidates: list[Candidate] = []
    abandoned, damaged, in_progress = [], [], []
    for entry in entries:
        if entry.manifest is not None:
            candidates.append(_candidate(entry, entry.manifest))
        elif entry.problem:
            damaged.append(entry.name)  # never deleted automatically: a person should look
        elif now - entry.taken_at > grace:
            abandoned.append(entry.name)
        else:
            in_progress.append(entry.name)
    listed_areas = areas.read(settings.env_dir(env))
    upgraded = [(str(item["system_identifier"]), datetime.fromisoformat(item["until"])) for item in listed_areas
                if item.get("until")]
    kept = decide(candidates, policy, now, upgraded)
    expired = sorted(c.name for c in candidates if c.name not in kept)
    wal_going, kept_from = _expired_areas(repository, env, listed_areas, [e for e in entries if e.name in kept])
    wal_names_going = sorted(item.name for item in wal_going)
    report = ExpireReport(
        env.name, repository.url, True, dict(sorted(kept.items())), expired, abandoned, damaged, in_progress, 0,
        len(wal_going), sum(item.size for item in wal_going), kept_from,
        types={c.name: c.type for c in candidates},
        wal_first=wal_names_going[0] if wal_names_going else None,
        wal_last=wal_names_going[-1] if wal_names_going else None,
        window_before=oldest_point(candidates), window_after=oldest_point([c for c in candidates if c.name in kept]),
        promised_from=window_start(policy, now), protected=env.protected)
    objects = {entry.name: tuple(info.key for info in entry.objects) for entry in entries}
    return _Plan(report, objects, wal_going)


def expire(settings: Settings, env: Environment, *, dry_run: bool = False, yes: bool = False,
           show: Callable[[ExpireReport], None] = lambda _: None, ask: Callable[[str], str] | None = None,
           now: datetime | None = None) -> ExpireReport:
    """Apply the environment's retention to its repository. The plan is shown first (`show`); a dry run stops
    there. On a protected environment, deleting anything needs `yes` or the environment's name typed in answer to
    `ask` (None: there is no terminal to ask, so it is refused)."""
    now = now or datetime.now(UTC)
    shown = _plan(settings, env, now)
    show(shown.report)
    if dry_run:
        return shown.report
    if shown.report.deletes:
        confirmation.require(
            env, "expiring backups", yes=yes, ask=ask, question=f"Type {env.name!r} to delete what is listed above",
            unasked=f"expiring backups of protected environment {env.name!r} needs confirmation and there is no "
                    "terminal to ask; nothing was deleted",
            hint="check the plan (dry-run=1), then add yes=1 to the make command (or --yes)",
            nothing="nothing was deleted")
    # Only what was shown and still goes: a backup verified (or taken) while the operator read the plan stays.
    again = _plan(settings, env, now) if ask is not None else shown
    going = sorted(set(shown.report.expired) & set(again.report.expired))
    abandoned = sorted(set(shown.report.abandoned) & set(again.report.abandoned))
    shown_wal = {item.key for item in shown.wal}
    wal = [item for item in again.wal if item.key in shown_wal]
    repository = open_repository(settings, env)
    # Manifests go first: from then on those backups no longer count, whatever happens next.
    repository.delete([prefix(name) + MANIFEST for name in going + abandoned])
    repository.delete([key for name in going + abandoned for key in again.objects.get(name, ())])
    repository.delete([item.key for item in wal])
    repository.delete(_records_of(repository, wal))
    temporaries = repository.cleanup(timedelta(hours=env.backup.retention.incomplete_after_hours))
    return dataclasses.replace(
        again.report, dry_run=False, expired=going, abandoned=abandoned, temporaries=temporaries,
        wal_expired=len(wal), wal_bytes=sum(item.size for item in wal),
        wal_first=min((item.name for item in wal), default=None),
        wal_last=max((item.name for item in wal), default=None))


def _records_of(repository: Repository, wal: Sequence[Archived]) -> list[str]:
    """The signed records of WAL files that went (never of one that stays), area by area (names repeat across
    a major-version upgrade's areas)."""
    from cuisine_db.backup.wal import records

    going: dict[str, set[str]] = defaultdict(set)
    for item in wal:
        going[item.key.split("/")[1]].add(item.name)
    return [info.key for area, names_going in going.items() for info in repository.list(wal_names.env_prefix(area))
            if records.is_claim(info.key) in names_going]


def _expired_areas(repository: Repository, env: Environment, listed_areas: list[dict[str, object]],
                   kept: list[BackupEntry]) -> tuple[list[Archived], str | None]:
    """WAL no kept backup needs, in each archive area (one per system identifier) against that cluster's kept
    backups. A superseded area none of whose backups is kept any more goes whole."""
    if not listed_areas:
        return _expired_wal(repository, env.name, kept)
    going: list[Archived] = []
    kept_from = None
    for place, item in enumerate(listed_areas):
        system, area = str(item["system_identifier"]), str(item["area"])
        own = [e for e in kept if e.manifest is not None and str(e.manifest.system_identifier) == system]
        if not own and place < len(listed_areas) - 1:
            going += [entry for entry in archive.list_archive(repository, area)
                      if not wal_names.is_history(entry.name)]
            continue
        found, start = _expired_wal(repository, area, own)
        going += found
        kept_from = start if place == len(listed_areas) - 1 else kept_from
    return going, kept_from


def _expired_wal(repository: Repository, area: str, kept: list[BackupEntry]
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
    archived = [item for item in archive.list_archive(repository, area) if not wal_names.is_history(item.name)]
    end = max((wal_names.segment_number(item.name[:24], size) for item in archived), default=-1)
    if start > end + 1:
        # A backup that starts beyond the archive's end (only a forged or broken manifest can): nothing goes.
        return [], None
    going = [item for item in archived if wal_names.segment_number(item.name[:24], size) < start]
    return going, first.dump["start_wal"]

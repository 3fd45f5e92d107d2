"""The WAL archive as a whole: what it holds, which timelines, where it has holes, what a replay would read.

Used by `wal status` and `backup status` (a continuous check, not only at restore time), by `db-apply-logs`
(refuses to replay across a hole, which would end recovery early and silently), by retention and by
`db-find-target`.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cuisine_db.backup.wal import wal_names
from cuisine_db.storage.base import Repository
from cuisine_db.storage.pipeline import fetch


@dataclass(frozen=True, slots=True)
class Archived:
    name: str
    sha256: str
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class Switch:
    """A timeline's history: `timeline` branched off `parent` at `lsn`."""

    timeline: int
    parent: int
    lsn: int


def list_archive(repository: Repository, env: str) -> list[Archived]:
    """Every archived file of an environment, in name order."""
    found = []
    for info in repository.list(wal_names.env_prefix(env)):
        parsed = wal_names.parse_key(info.key)
        if parsed is not None:
            found.append(Archived(parsed.name, parsed.sha256, info.key, info.size, info.modified))
    return sorted(found, key=lambda item: (item.name, item.sha256))


@dataclass(frozen=True, slots=True)
class Ownership:
    """Which archived copies our signed records name. `foreign`: names with copies no trusted record names
    (planted, or archived before records were signed); `orphans`: of those, names with no copy of ours at all;
    `disagreeing`: names with two trusted records of different content; `claims`: record keys by name."""

    foreign: list[str]
    orphans: list[str]
    disagreeing: list[str]
    claims: dict[str, list[str]]


def ownership(repository: Repository, env: str, archived: Sequence[Archived], trust: Any) -> Ownership:
    """Reads and verifies records only where a name is not simply one copy and one record (the usual case, which
    `wal fetch` verifies when it takes the file)."""
    from cuisine_db.backup.wal import records
    from cuisine_db.storage import signing

    claims: dict[str, list[str]] = defaultdict(list)
    for info in repository.list(wal_names.env_prefix(env)):
        claimed = records.is_claim(info.key)
        if claimed is not None:
            claims[claimed].append(info.key)
    copies: dict[str, set[str]] = defaultdict(set)
    for item in archived:
        copies[item.name].add(item.sha256)
    foreign, orphans, disagreeing = [], [], []
    for name, hashes in sorted(copies.items()):
        keys = claims.get(name, [])
        if len(hashes) == 1 and len(keys) == 1:
            continue
        trusted = set()
        for key in keys:
            try:
                trusted.add(records.read(repository.get_bytes(key), trust, env, name).sha256)
            except signing.Untrusted:
                continue
        if len(trusted) > 1:
            disagreeing.append(name)
        if hashes - trusted:
            foreign.append(name)
        if not hashes & trusted:
            orphans.append(name)
    return Ownership(foreign, orphans, disagreeing, dict(claims))


def duplicates(archived: Sequence[Archived]) -> list[str]:
    """Names stored with two different contents (never written by our push; a person must look)."""
    counts: dict[str, int] = defaultdict(int)
    for item in archived:
        counts[item.name] += 1
    return sorted(name for name, count in counts.items() if count > 1)


def read_history(repository: Repository, item: Archived, identities: list[Any]) -> list[Switch]:
    """A timeline history file's switch points (`parentTLI <tab> LSN <tab> reason` per line)."""
    buffer = io.BytesIO()
    fetch(repository, item.key, buffer, identities)
    timeline = wal_names.timeline(item.name)
    switches = []
    for line in buffer.getvalue().decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            switches.append(Switch(timeline, int(fields[0]), wal_names.parse_lsn(fields[1])))
    return switches


def newest_history(repository: Repository, archived: Sequence[Archived], identities: list[Any]) -> list[Switch]:
    """The ancestry of the newest timeline (its history file lists every switch that led to it)."""
    histories = [item for item in archived if wal_names.is_history(item.name)]
    if not histories:
        return []
    return read_history(repository, max(histories, key=lambda item: item.name), identities)


@dataclass(frozen=True, slots=True)
class TimelinePath:
    """Which timeline serves each segment number: the newest timeline's ancestry, each from its switch point."""

    starts: dict[int, int]
    ends: dict[int, int]
    newest: int

    def timeline_at(self, number: int) -> int:
        return max(tli for tli, start in self.starts.items() if start <= number)

    def holds(self, tli: int, number: int) -> bool:
        """Whether the file of segment `number` on timeline `tli` is on the path (not an abandoned branch)."""
        return tli in self.starts and self.starts[tli] <= number <= self.ends.get(tli, number)


def timeline_path(switches: Sequence[Switch], segment_size: int, base: int = 1) -> TimelinePath:
    """From the newest history file's lines (`parent`, switch point): the first timeline from segment 0, each
    later one from the segment of the switch that began it. Without history, only `base`."""
    if not switches:
        return TimelinePath({base: 0}, {}, base)
    newest = switches[0].timeline
    starts = {switches[0].parent: 0}
    ends = {}
    for index, switch in enumerate(switches):
        child = switches[index + 1].parent if index + 1 < len(switches) else newest
        ends[switch.parent] = wal_names.segment_of(switch.lsn, segment_size)
        starts[child] = wal_names.segment_of(switch.lsn, segment_size)
    return TimelinePath(starts, ends, newest)


@dataclass(frozen=True, slots=True)
class Coverage:
    """What a replay from `start` would read from the archive: the last segment it reaches, the holes before
    it, and whether the start is on the newest timeline's ancestry at all."""

    start: str
    end: str | None
    missing: list[str]
    segments: int
    on_path: bool = True


def coverage(archived: Sequence[Archived], start_segment: str, switches: Sequence[Switch],
             segment_size: int = wal_names.DEFAULT_SEGMENT_SIZE) -> Coverage:
    """The segments a replay from `start_segment` needs along the newest timeline's ancestry, and those missing
    before the last one archived: a hole ends recovery early, and everything after it would be lost."""
    start_number = wal_names.segment_number(start_segment, segment_size)
    path = timeline_path(switches, segment_size, wal_names.timeline(start_segment))
    if not path.holds(wal_names.timeline(start_segment), start_number):
        return Coverage(start_segment, None, [], 0, on_path=False)
    present = {item.name for item in archived if wal_names.is_segment(item.name)}
    numbers = [wal_names.segment_number(name, segment_size) for name in present]
    last = max((n for n, name in zip(numbers, present, strict=True)
                if n >= start_number and path.holds(wal_names.timeline(name), n)), default=None)
    if last is None:
        return Coverage(start_segment, None, [], 0)
    expected = [wal_names.segment_name(path.timeline_at(n), n, segment_size) for n in range(start_number, last + 1)]
    missing = [name for name in expected if name not in present]
    return Coverage(start_segment, expected[-1], missing, len(expected) - len(missing))

"""`wal catch-up`: after a promotion, the new leader archives the complete segments of the earlier timelines that
it holds in pg_wal and the archive lacks (Patroni runs it as the `on_role_change` callback).

With `archive_mode = on` only the leader archives: a standby marks each segment it receives as archived (`.done`)
and never pushes it. A leader that dies with finished segments it had not pushed yet (its archiver behind, the
repository slow, a `pg_switch_wal` just before the crash) leaves them on no server that will ever archive them: a
hole in the archive just before the switch, and every point-in-time restore past it stops there. The new leader
received those very segments by streaming (in synchronous mode every acknowledged commit reached it); this pushes
them with `wal push`'s own code, which is idempotent: a segment the old leader did archive is found present (the
same content) and nothing is stored twice; a different content under the name is refused and reported, never
replaced.

Candidates are the segments on the new timeline's ancestry only, read from its newest history file in pg_wal:
each earlier timeline from the segment where it began up to the one holding its switch point, exclusive (that one
is partial, and PostgreSQL archives it as `.partial` itself); and only files whose first page header says they are
that very segment: a file recycled under a name past the switch point holds old bytes and is never pushed. (Every
segment of the range was received whole: the switch point lies beyond it.) Segments pg_wal no longer holds cannot
be caught up: `wal status` shows the hole, and a full backup ends it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import NamedTuple

from cuisine_db.backup.wal import wal_names
from cuisine_db.backup.wal.access import WalAccess

# XLogLongPageHeaderData, on a segment's first page: magic, info, timeline, page address, remaining length,
# (padding), system identifier, segment size, page size.
_LONG = struct.Struct("<HHIQI4xQII")
_LONG_HEADER_FLAG = 0x0002
LEADER_ROLES = ("primary", "master", "promoted")
# pg_control begins with the system identifier (8 bytes), two versions (4 + 4) and the cluster state (4), in the
# same place in every version; DB_IN_PRODUCTION is the state once recovery has ended.
_STATE_OFFSET = 16
IN_PRODUCTION = 6
PROMOTION_SECONDS = 120.0


class Candidate(NamedTuple):
    path: Path
    timeline: int
    number: int


class Result(NamedTuple):
    """What a catch-up did: names stored now, names already archived, names refused or failed (with why)."""

    timeline: int | None
    stored: list[str]
    present: list[str]
    failed: list[tuple[str, str]]
    skipped: list[tuple[str, str]]


def in_production(pgdata: Path) -> bool:
    """Whether the cluster's control file says recovery has ended (the new timeline's history file is written)."""
    try:
        with (pgdata / "global" / "pg_control").open("rb") as handle:
            head = handle.read(_STATE_OFFSET + 4)
    except OSError:
        return False
    return len(head) == _STATE_OFFSET + 4 and int.from_bytes(head[_STATE_OFFSET:], "little") == IN_PRODUCTION


def wait_promoted(pgdata: Path, seconds: float = PROMOTION_SECONDS) -> bool:
    """Until recovery has ended: Patroni calls on_role_change right after `pg_ctl promote --no-wait`, before the
    server has chosen its new timeline and written its history file."""
    from cuisine_db.waiting import wait_for  # here: the archive command's other paths do without it

    return wait_for(lambda: in_production(pgdata) or None, seconds=seconds, interval=0.2) is not None


def archiving(pgdata: Path) -> bool:
    """Whether the server archives with cuisine-db (archive_mode on and our `wal push`), as its configuration files
    say (postgresql.conf, which Patroni writes, then postgresql.auto.conf): before `wal enable` a promotion must
    not start pushing into the repository."""
    values: dict[str, str] = {}
    for name in ("postgresql.conf", "postgresql.auto.conf"):
        try:
            text = (pgdata / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            key, equals, value = line.partition("=")
            if equals and key.strip() in ("archive_mode", "archive_command"):
                values[key.strip()] = value.split("#")[0].strip().strip("'") if key.strip() == "archive_mode" \
                    else value.strip()
    return values.get("archive_mode") in ("on", "always") and " wal push " in values.get("archive_command", "")


def _history_ranges(pg_wal: Path, segment_size: int) -> tuple[int, dict[int, tuple[int, int]]] | None:
    """(newest timeline, {earlier timeline: (first segment, end segment exclusive)}) from the newest history file;
    None without one (a cluster that never switched timelines has nothing to catch up)."""
    histories = sorted(name for name in os.listdir(pg_wal) if wal_names.is_history(name))
    if not histories:
        return None
    newest = wal_names.timeline(histories[-1])
    ranges: dict[int, tuple[int, int]] = {}
    start = 0
    for line in (pg_wal / histories[-1]).read_text(encoding="ascii", errors="replace").splitlines():
        fields = line.split()
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        end = wal_names.segment_of(wal_names.parse_lsn(fields[1]), segment_size)
        ranges[int(fields[0])] = (start, end)
        start = end
    return newest, ranges


def segment_size_of(pg_wal: Path) -> int | None:
    """The cluster's segment size, from the first segment's long page header in pg_wal."""
    for name in sorted(os.listdir(pg_wal)):
        if wal_names.is_segment(name):
            with (pg_wal / name).open("rb") as handle:
                head = handle.read(_LONG.size)
            if len(head) == _LONG.size:
                _magic, info, _tli, _addr, _rem, _sysid, size, _blck = _LONG.unpack(head)
                if info & _LONG_HEADER_FLAG and size > 0:
                    return int(size)
    return None


def complete(path: Path, number: int, segment_size: int) -> str | None:
    """None when `path` is segment `number` written from its start (its first page names its own address and the
    cluster's segment size); else why not. The rest is not read: a segment ended by a WAL switch is zeros after
    the switch record, on the old leader as here (the standby wrote the bytes the leader sent from its own file)."""
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size != segment_size:
                return "not the size of a segment"
            head = handle.read(_LONG.size)
        _magic, info, _tli, address, _rem, _sysid, size, block = _LONG.unpack(head)
    except (OSError, struct.error) as exc:
        return f"unreadable ({exc})"
    if not info & _LONG_HEADER_FLAG or size != segment_size or address != number * segment_size \
            or not 0 < block <= segment_size:
        return "its first page is not this segment's (a recycled file)"
    return None


def candidates(pg_wal: Path) -> tuple[int | None, list[Candidate], list[tuple[str, str]]]:
    """The newest timeline, the complete segments of its ancestors in pg_wal (oldest first), and files skipped."""
    segment_size = segment_size_of(pg_wal)
    found = _history_ranges(pg_wal, segment_size) if segment_size else None
    if found is None or segment_size is None:
        return None, [], []
    newest, ranges = found
    chosen: list[Candidate] = []
    skipped: list[tuple[str, str]] = []
    for name in sorted(os.listdir(pg_wal)):
        if not wal_names.is_segment(name):
            continue
        tli, number = wal_names.timeline(name), wal_names.segment_number(name, segment_size)
        if tli >= newest or tli not in ranges or not ranges[tli][0] <= number < ranges[tli][1]:
            continue
        why = complete(pg_wal / name, number, segment_size)
        if why is not None:
            skipped.append((name, why))
            continue
        chosen.append(Candidate(pg_wal / name, tli, number))
    return newest, chosen, skipped


def catch_up(access: WalAccess, pg_wal: Path) -> Result:
    """Push every candidate the archive lacks (push_one: present when the same content is archived already)."""
    from cuisine_db.backup.wal import push
    from cuisine_db.errors import CuisineDbError

    newest, chosen, skipped = candidates(pg_wal)
    stored: list[str] = []
    present: list[str] = []
    failed: list[tuple[str, str]] = []
    if chosen:
        repository = access.repository()
        recipients = access.parsed_recipients()
        signer = access.signer()
        for candidate in chosen:
            name = candidate.path.name
            try:
                outcome = push.push_one(access, repository, recipients, candidate.path, signer)
            except (CuisineDbError, OSError) as exc:
                push.record_failure(access, name, exc)
                failed.append((name, exc.message if isinstance(exc, CuisineDbError) else str(exc)))
                continue
            (stored if outcome.state == "stored" else present).append(name)
    return Result(newest, stored, present, failed, skipped)

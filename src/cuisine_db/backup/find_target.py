"""db-find-target: where to go back to. Reads the archived WAL with pg_waldump and lists the destructive
transactions (DROP, TRUNCATE, large DELETE or UPDATE bursts) with their commit time, xid and LSN, each with the
db-apply-logs or db-restore-tables command that stops just before it.

The WAL read is the archive from the newest physical backup's start (where a point-in-time recovery can begin)
to its end, along the newest timeline's ancestry, decrypted segment by segment into a scratch folder. Relation
files are named from the live catalog (tables that still exist, and the new files TRUNCATE gave them) and from
the physical backups' manifests (tables dropped since).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db import sql as queries
from cuisine_db.backup import catalog, waldump
from cuisine_db.backup.backup_names import PHYSICAL_TYPES, TableName, parse_tables
from cuisine_db.backup.manifest import Manifest
from cuisine_db.backup.wal import archive, areas, wal_names
from cuisine_db.backup.workspace import scratch
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UnavailableError, UsageError
from cuisine_db.postgres import binaries
from cuisine_db.postgres.runner import spawn
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage import open_repository
from cuisine_db.storage.pipeline import fetch

Notify = Callable[[str], None]
THREADS = 4


@dataclass(frozen=True, slots=True)
class Target:
    """A destructive transaction and how to stop just before it."""

    kind: str
    xid: str
    lsn: str
    committed_at: datetime
    tables: list[str]
    rows: int
    apply_logs: str
    restore_tables: str | None


@dataclass(frozen=True, slots=True)
class FindReport:
    env: str
    read_from: str | None
    read_to: str | None
    segments: int
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _physical(settings: Settings, env: Environment) -> list[Manifest]:
    return [e.manifest for e in catalog.list_backups(settings, env)
            if e.manifest is not None and e.type in PHYSICAL_TYPES]


def _live_names(settings: Settings, env: Environment) -> dict[str, str]:
    try:
        with connect(settings, env, "find-target", purpose="monitoring", start=False) as conn:
            return dict(conn.execute(queries.load("pitr/relation_files")).fetchall())
    except (CuisineDbError, psycopg.Error):
        return {}


def _namer(settings: Settings, env: Environment, manifests: list[Manifest]) -> Callable[[str], str | None]:
    live = _live_names(settings, env)
    known: dict[str, str] = {}
    for manifest in manifests:  # oldest first: newer backups' names win
        known.update(manifest.dump.get("relations") or {})
    known.update(live)
    return known.get


def _fetch_segments(repository: Any, listed: list[archive.Archived], wanted: list[str], folder: Path,
                    identities: list[Any]) -> list[str]:
    by_name = {item.name: item for item in listed}
    present = [name for name in wanted if name in by_name]

    def one(name: str) -> None:
        with (folder / name).open("wb") as handle:
            fetch(repository, by_name[name].key, handle, identities)

    with ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="find-target") as pool:
        for done in pool.map(one, present):
            del done
    return present


def _runs(names_: list[str]) -> list[list[str]]:
    """Consecutive segments of one timeline: one pg_waldump run each."""
    runs: list[list[str]] = []
    for name in names_:
        if runs and wal_names.timeline(runs[-1][-1]) == wal_names.timeline(name):
            runs[-1].append(name)
        else:
            runs.append([name])
    return runs


def _dump(program: Path, folder: Path, run: list[str], reader: waldump.Reader) -> str:
    """pg_waldump over one run of segments, fed line by line to the reader; returns its complaint, if any (the
    last segment of an archive ends in zeros after a switch, which pg_waldump reports and we expect)."""
    errors = folder / "pg_waldump.err"
    with errors.open("wb") as sink:
        process = spawn([program, f"--path={folder}", run[0], run[-1]], env={"TZ": "UTC"},
                        stdout=subprocess.PIPE, stderr=sink)
        if process.stdout is None:
            raise UnavailableError("pg_waldump's output could not be read")
        for raw in process.stdout:
            reader.feed(raw.decode(errors="replace"))
        process.wait()
    return errors.read_text(errors="replace").strip()


def _tables(event: waldump.Event, name_of: Callable[[str], str | None]) -> list[str]:
    """A TRUNCATE's tables by their new files (the live catalog knows them), else by the old ones (a backup's
    record does); a DROP's by the old ones; what nothing names stays a file."""
    keys = [*event.created, *event.files] if event.kind == "TRUNCATE" else list(event.files)
    found = sorted({name for key in keys if (name := name_of(key))})
    return found or [f"relation {key}" for key in event.files]


def _commands(env: Environment, event: waldump.Event, tables: list[str], backup: str | None) -> tuple[str, str | None]:
    restore = f"make db-restore env={env.name} backup={backup or 'latest'}"
    apply = f"{restore} && make db-apply-logs env={env.name} xid={event.xid} inclusive=0"
    if not tables or any(table.startswith("relation ") for table in tables) or event.kind == "DROP DATABASE":
        return apply, None
    names_ = ",".join(table.split(".", 1)[1] if table.startswith("public.") else table for table in tables)
    return apply, (f"make db-restore-tables env={env.name} backup={backup or 'latest'} tables={names_} "
                   f"xid={event.xid} inclusive=0")


def find(settings: Settings, env: Environment, *, table: str | None = None, min_rows: int = 1000,
         hours: float | None = None, notify: Notify = lambda _: None) -> FindReport:
    """Destructive transactions in env's archived WAL, newest last, optionally only those touching `table` (as typed:
    `users` or `public.users`, checked before anything is read)."""
    wanted_table = parse_tables(table)[0] if table is not None else None
    repository = open_repository(settings, env)
    manifests = _physical(settings, env)
    if not manifests:
        raise UsageError(f"environment {env.name!r} has no physical backup: there is no point in time to go back from",
                         hint=f"make db-backup env={env.name} type=full, with WAL archiving on")
    newest = manifests[-1]
    size = int(newest.dump.get("wal_segment_size", wal_names.DEFAULT_SEGMENT_SIZE))
    listed = archive.list_archive(repository, areas.current(env.name, settings.env_dir(env)))
    identities = age_keys.identities(settings, [env])
    switches = archive.newest_history(repository, listed, identities)
    start = newest.dump.get("start_wal")
    if start is None:
        raise UsageError(f"{newest.name} records no WAL start")
    covered = archive.coverage(listed, start, switches, size)
    path = archive.timeline_path(switches, size, wal_names.timeline(start))
    end = covered.end
    if end is None:
        return FindReport(env.name, start, None, 0, notes=["nothing is archived after the newest physical backup"])
    first, last = wal_names.segment_number(start, size), wal_names.segment_number(end, size)
    wanted = [wal_names.segment_name(path.timeline_at(n), n, size) for n in range(first, last + 1)]
    if hours is not None:
        since = datetime.now(UTC) - timedelta(hours=hours)
        recent = {item.name for item in listed if item.modified >= since}
        wanted = [name for name in wanted if name in recent] or wanted[-1:]
    program = binaries.find(newest.server_major, settings.cache_dir).program("pg_waldump")
    reader = waldump.Reader()
    notes = [f"segment {name} is missing from the archive: nothing is seen there" for name in covered.missing]
    with scratch(settings, f"find-target-{env.name}") as work:
        notify(f"{env.name}: reading {len(wanted)} archived WAL segment(s), {wanted[0]} .. {wanted[-1]}")
        present = _fetch_segments(repository, listed, wanted, work, identities)
        for run in _runs(present):
            complaint = _dump(program, work, run, reader)
            if complaint and "invalid record length" not in complaint and "could not find" not in complaint:
                notes.append(f"pg_waldump: {complaint.splitlines()[-1]}")
    name_of = _namer(settings, env, manifests)
    targets = []
    for event in reader.events(min_rows):
        if event.kind == "DROP DATABASE":
            databases = newest.dump.get("databases") or {}
            tables = [f"database {databases.get(oid, oid)}" for oid in event.files]
        else:
            tables = _tables(event, name_of)
        if wanted_table is not None and not any(_matches(name, wanted_table) for name in tables):
            continue
        before = [m for m in manifests if m.stop_lsn and wal_names.parse_lsn(m.stop_lsn)
                  <= wal_names.parse_lsn(event.lsn)]
        backup = before[-1].name if before and before[-1] is not newest else None
        apply, restore = _commands(env, event, tables, backup)
        targets.append(Target(event.kind, event.xid, event.lsn, event.committed_at, tables, event.rows, apply,
                              restore))
    return FindReport(env.name, wanted[0], wanted[-1], len(present), targets, notes)


def _matches(name: str, table: TableName) -> bool:
    schema, _, relation = name.rpartition(".")
    return relation == table.name and (table.schema is None or schema == table.schema)


"""db-archive-data: what a run would do (plan), and the run itself.

A run holds a session advisory lock on the table (one run per table at a time), then:
1. finishes every *pending* archive of the table (exported, but its deletion was interrupted): check it again,
   delete by its ledger, record `deletion.json`;
2. removes the run's own abandoned exports (a folder with this table's intent and no manifest: nothing was ever
   deleted for them);
3. exports the rows older than the cutoff as a new archive (export.py), checks it, writes its manifest;
4. deletes them in batches (deletion.py) and records `deletion.json`.
A kill -9 anywhere leaves either no manifest (step 3: the rows are all still in the table) or a pending archive
that step 1 of the next run finishes; either way every row is in the table or in exactly one archive.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.archive import catalog
from cuisine_db.archive.archive_verify import check_objects
from cuisine_db.archive.catalog import ArchiveEntry, Outcome
from cuisine_db.archive.deletion import DeletionResult, delete_archived
from cuisine_db.archive.export import LEDGER, export
from cuisine_db.archive.request import ArchiveRequest
from cuisine_db.archive.table import ArchiveTable, inspect, one_row, refuse_references
from cuisine_db.backup.manifest import VERIFICATION, Manifest
from cuisine_db.backup.workspace import database_of, scratch
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, RefusedError, UnavailableError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.postgres.advisory import try_lock
from cuisine_db.records import DamagedRecord
from cuisine_db.storage import Repository, open_repository
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.pipeline import fetch
from cuisine_db.waiting import poll_until
from cuisine_db.whoami import who

LOCK_SPACE = 0x61726368  # "arch": the advisory lock space of archive runs; the key is the table's oid
LOCK_WAIT_S = 30.0
Notify = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Pending:
    name: str
    rows: int | None


@dataclass(frozen=True, slots=True)
class ArchivePlan:
    """What a run would do now: the rows it would archive and delete, and the interrupted archives it would finish."""

    env: str
    database: str
    repository: str
    table: str
    column: str
    column_type: str
    primary_key: list[str]
    references: list[str]
    older_than: str
    cutoff: datetime
    rows: int
    oldest: str | None
    newest: str | None
    pending: list[Pending] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    """One archive a run finished: exported now (resumed=False) or by an interrupted run (resumed=True)."""

    name: str
    resumed: bool
    rows: int
    deleted: int
    gone: int
    kept: int
    size: int
    batches: int
    seconds: float


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    env: str
    table: str
    repository: str
    archives: list[ArchiveResult]
    abandoned: list[str]
    seconds: float

    @property
    def exported(self) -> int:
        return sum(a.rows for a in self.archives if not a.resumed)

    @property
    def deleted(self) -> int:
        return sum(a.deleted for a in self.archives)

    @property
    def kept(self) -> int:
        return sum(a.kept for a in self.archives)


def _lock_key(oid: int) -> int:
    return oid - (1 << 32) if oid >= (1 << 31) else oid  # the int4 form of an oid


@contextmanager
def _locked(conn: psycopg.Connection[Any], table: ArchiveTable, notify: Notify) -> Iterator[None]:
    """One run per table: wait a little for another (a killed run's session may take a moment to go)."""
    params = {"space": LOCK_SPACE, "key": _lock_key(table.oid)}
    poll_until(lambda: try_lock(conn, "archive/try_lock", params), seconds=LOCK_WAIT_S, interval=0.5,
               what=f"another db-archive-data run has been working on {table.qualified} for more than "
                    f"{LOCK_WAIT_S:.0f}s", hint="see it with make db-connections; run again once it is done",
               waiting=lambda: notify(f"waiting for another archive run on {table.qualified} to finish"))
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute(queries.load("archive/unlock"), params)


def _pending(entries: list[ArchiveEntry], env: str, database: str, table: str) -> list[Manifest]:
    """Complete archives of this table whose deletion did not finish (and which were not brought back since).
    An archive of the table whose deletion or restore record is damaged stops the run (exit 1, naming the file):
    whether its rows may be deleted is not known."""
    mine = [e for e in entries if e.manifest is not None and e.manifest.env == env
            and e.manifest.database == database and e.table == table]
    for entry in mine:
        damage = entry.damage(catalog.DELETION) or entry.damage(catalog.RESTORED)
        if damage is not None:
            raise DamagedRecord(damage.where, damage.why, hint="whether its rows were deleted or brought back is not "
                                "known: repair or remove that record by hand (the archive itself is intact), then "
                                "run again")
    return [e.manifest for e in mine if e.pending and e.manifest is not None]


def _ready(settings: Settings, env: Environment) -> list[Any]:
    """Both keys, before anything runs: rows are deleted only once the archive has been decrypted here."""
    age_keys.parse_recipients(age_keys.recipients(settings, env))
    try:
        return age_keys.identities(settings, [env])
    except UsageError as exc:
        raise UsageError(f"{exc.message}: db-archive-data deletes rows only after decrypting their archive here",
                         hint=exc.hint) from None


@contextmanager
def _server_errors(env: Environment, what: str) -> Iterator[None]:
    """The server errors an archive run can meet and their remedies; anything else is a bug and shows as one."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        raise UnavailableError(f"{env.name}: {what}: {exc.diag.message_primary}",
                               hint="db-archive-data connects as the environment's own role, which needs SELECT, "
                                    "DELETE and INSERT on the table") from None
    except psycopg.OperationalError as exc:
        raise UnavailableError(f"{env.name}: {what}: the connection to the server was lost ({str(exc).strip()})",
                               hint="run the same command again: it finishes what was interrupted") from None


def plan(settings: Settings, env: Environment, request: ArchiveRequest) -> ArchivePlan:
    """What a run would archive and delete now, refusing what it would refuse; nothing is written."""
    _ready(settings, env)
    repository = open_repository(settings, env)
    database = database_of(settings, env)
    with _server_errors(env, "looking at the table"), connect(settings, env, "archive-data plan") as conn:
        conn.execute(queries.load("archive/session"))
        table = inspect(conn, request.table, request.column)
        cutoff, standby = one_row(conn.execute(queries.load("archive/cutoff"),
                                               {"seconds": request.age.total_seconds()}).fetchone())
        if standby:
            raise RefusedError(f"environment {env.name!r} points at a standby: rows can only be deleted on the primary")
        refuse_references(conn, table, cutoff)
        counted = one_row(conn.execute(queries.load("archive/candidates").format(
            table=table.ident(), column=sql.Identifier(table.column)), {"cutoff": cutoff}).fetchone())
    pending = _pending(catalog.trusted_scan(settings, env, repository), env.name, database, table.qualified)
    return ArchivePlan(env.name, database, repository.url, table.qualified, table.column, table.column_type,
                       table.key, [f"{r.name} from {r.child}" for r in table.references], request.older_than,
                       cutoff, counted[0], counted[1], counted[2],
                       [Pending(m.name, m.tables[0].rows) for m in pending])


def _finish(settings: Settings, env: Environment, conn: psycopg.Connection[Any], repository: Repository,
            manifest: Manifest, table: ArchiveTable, request: ArchiveRequest, identities: list[Any], *,
            check_first: bool, notify: Notify) -> DeletionResult:
    """Delete what a complete archive holds, after reading it back; record the outcome next to it."""
    if table.key != list(manifest.dump["primary_key"]):
        raise FailedError(f"{table.qualified}'s primary key changed since {manifest.name} was taken: its rows are "
                          "left in the table", hint="bring the archive back (restore=1), or delete by hand")
    if check_first:
        check = check_objects(repository, manifest, identities)
        catalog.record(settings, env, repository, manifest.name, VERIFICATION, check.to_json())
        if not check.ok:
            raise FailedError(f"{manifest.name} fails its check, so none of its rows are deleted: {check.problems[0]}",
                              hint=f"cuisine-db archive verify {manifest.name} --env {env.name} shows every problem")
    ledger = next(item for item in manifest.objects if item.file == LEDGER)
    with scratch(settings, f"archive-{manifest.name}") as work:
        path = work / LEDGER
        with path.open("wb") as handle:
            fetch(repository, catalog.prefix(manifest.name) + ledger.name, handle, identities,
                  expect_size=ledger.size, expect_sha256=ledger.sha256)
        rows = manifest.tables[0].rows or 0
        notify(f"{env.name}: deleting the {rows:,} rows of {manifest.name} from {table.qualified} in batches of "
               f"{request.batch_size:,}")
        result = delete_archived(conn, table, path, batch_size=request.batch_size, pause=request.pause,
                                 lock_timeout=env.lock_timeout, retries=env.lock_retries, notify=notify)
    if result.rows != rows:
        raise FailedError(f"{manifest.name}: its ledger lists {result.rows:,} rows, the manifest {rows:,}")
    catalog.record(settings, env, repository, manifest.name, catalog.DELETION, Outcome(
        datetime.now(UTC), who(), result.seconds,
        {"rows": result.rows, "deleted": result.deleted, "gone": result.gone, "kept": result.kept}).to_json())
    return result


def _abandon(repository: Repository, entries: list[ArchiveEntry], env: str, database: str, table: str) -> list[str]:
    """Remove exports of this table that never got a manifest (runs killed while exporting): nothing was deleted
    for them, and the run's lock says none is still being written."""
    gone = []
    for entry in entries:
        intent = entry.intent
        if (entry.manifest is None and entry.problem is None and intent is not None and intent.env == env
                and intent.database == database and intent.table == table):
            repository.delete([info.key for info in entry.objects if not info.key.endswith(catalog.INTENT)])
            repository.delete([catalog.prefix(entry.name) + catalog.INTENT])
            gone.append(entry.name)
    return gone


def action(planned: ArchivePlan) -> str:
    """What a run of `planned` does, as the confirmation names it."""
    pending = sum(p.rows or 0 for p in planned.pending)
    text = f"Archiving and then deleting {planned.rows:,} rows of {planned.table}"
    if pending:
        text += f" (finishing first the deletion of interrupted archives of {pending:,} rows)"
    return text


def run(settings: Settings, env: Environment, request: ArchiveRequest, *, planned: ArchivePlan | None = None,
        yes: bool = False, ask: Ask | None = None, notify: Notify = lambda _: None) -> ArchiveReport:
    """Finish interrupted archives of the table, then archive and delete its old rows. Where there is anything to
    delete, a protected environment needs the confirmation first (`planned`, the plan the caller showed, or a
    fresh one)."""
    planned = planned if planned is not None else plan(settings, env, request)
    if planned.rows or planned.pending:
        confirmation.require(env, action(planned), yes=yes, ask=ask)
    started = time.monotonic()
    identities = _ready(settings, env)
    repository = open_repository(settings, env)
    database = database_of(settings, env)
    results: list[ArchiveResult] = []
    with _server_errors(env, "archiving"), connect(settings, env, "archive-data") as conn:
        conn.execute(queries.load("archive/session"))
        table = inspect(conn, request.table, request.column)
        with _locked(conn, table, notify):
            entries = catalog.trusted_scan(settings, env, repository)
            for manifest in _pending(entries, env.name, database, table.qualified):
                notify(f"{env.name}: {manifest.name} was interrupted before all its rows were deleted: finishing it")
                done = _finish(settings, env, conn, repository, manifest, table, request, identities,
                               check_first=True, notify=notify)
                results.append(_result(manifest, True, done))
            abandoned = _abandon(repository, entries, env.name, database, table.qualified)
            if abandoned:
                notify(f"{env.name}: removed {len(abandoned)} interrupted export(s) of {table.qualified} that never "
                       f"got a manifest ({', '.join(abandoned)})")
            # The plan's cutoff, not a later one: the run deletes what the confirmation named, however long it took.
            exported = export(settings, env, conn, repository, request, identities, cutoff=planned.cutoff,
                              notify=notify)
            if exported is not None:
                done = _finish(settings, env, conn, repository, exported.manifest, exported.table, request,
                               identities, check_first=False, notify=notify)
                results.append(_result(exported.manifest, False, done))
    return ArchiveReport(env.name, table.qualified, repository.url, results, abandoned,
                         round(time.monotonic() - started, 3))


def _result(manifest: Manifest, resumed: bool, done: DeletionResult) -> ArchiveResult:
    return ArchiveResult(manifest.name, resumed, manifest.tables[0].rows or 0, done.deleted, done.gone, done.kept,
                         manifest.size, done.batches, done.seconds)

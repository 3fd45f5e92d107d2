"""Physical backups: `pg_basebackup` of the whole cluster, each tar file streamed into the repository as it grows.

pg_basebackup writes tar format into a scratch folder with the WAL the backup needs streamed alongside
(`-X stream`, a temporary replication slot keeps it from being recycled). Each file is read while it grows and
stored through age and sha256; the space behind the reader is handed back, so no full copy stays on disk. On
PostgreSQL 15+ the server compresses the base with zstd on its own workers and the stream is stored as it is, its
frame headers walked on the way to prove it whole (storage/zstd_frames.py) and its plain size recorded as a bound
computed from the server's backup_manifest (backup/tar_bound.py), never decompressed; below 15 our pipeline
compresses.
On PostgreSQL 17+ `type=incremental` sends the previous backup's `backup_manifest` and the server (with
`summarize_wal = on`) sends only the changed blocks; restores combine the chain with `pg_combinebackup`.
The manifest, written last, records the system identifier, timeline, start and stop LSN and times.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db import __version__
from cuisine_db import sql as queries
from cuisine_db.backup import catalog
from cuisine_db.backup.logical import _unique_name
from cuisine_db.backup.manifest import Manifest, ObjectEntry, WrittenBackup, prefix
from cuisine_db.backup.streaming import stream_folder
from cuisine_db.backup.tar_bound import plain_bounds
from cuisine_db.backup.wal import wal_names
from cuisine_db.backup.workspace import database_of, scratch
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, RefusedError, UnavailableError, UsageError
from cuisine_db.postgres import binaries
from cuisine_db.postgres.connect import client_environ, connection_params
from cuisine_db.postgres.runner import ToolError, spawn
from cuisine_db.postgres.target import Target
from cuisine_db.storage import Repository, open_repository
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.growing import GrowingFile
from cuisine_db.storage.pipeline import StoredObject, store
from cuisine_db.storage.zstd_frames import FrameWalker, ZstdFormatError

Progress = Callable[[int], None]
MANIFEST_FILE = "backup_manifest"
WAL = "pg_wal.tar"
SERVER_COMPRESSION_FROM = 150000
INCREMENTAL_FROM = 170000


@dataclass(frozen=True, slots=True)
class PhysicalReport(WrittenBackup):
    """What a physical backup (pg_basebackup) wrote, for people and for --json."""

    seconds: float
    timeline: int
    start_lsn: str
    stop_lsn: str
    compression: str
    depends_on: str | None
    pg_basebackup: str
    source: str = "primary"
    plain_bounded: bool = False  # plain_size is an upper bound (server-compressed tars are never decompressed)


@dataclass(frozen=True, slots=True)
class ServerFacts:
    version: str
    version_num: int
    wal_segment_size: int
    data_checksums: bool
    summarize_wal: str | None
    archive_mode: str

    @property
    def major(self) -> int:
        return self.version_num // 10000


def object_name(file: str) -> str:
    """base.tar -> base.tar.zst.age; the server's base.tar.zst keeps one .zst."""
    return f"{file.removesuffix('.zst')}.zst.age"


def plain_file(file: str) -> str:
    return file.removesuffix(".zst")


def identify_system(settings: Settings, env: Environment, target: Target | None = None) -> tuple[str, int]:
    """System identifier and timeline, over the replication protocol (the backup role may not read pg_control);
    of one of the environment's replicas with `target`."""
    params = connection_params(settings, env, purpose="backup", target=target)
    from cuisine_db.postgres import purposes

    password = purposes.password_for(settings, env, "backup")
    if password is not None:
        params["password"] = password
    params.update(replication="true", connect_timeout=10, application_name="cuisine-db backup identify")
    try:
        conn = psycopg.connect(**params, autocommit=True)
    except psycopg.OperationalError as exc:
        raise UnavailableError(f"cannot open a replication connection to {env.name!r}: "
                               f"{str(exc).strip().splitlines()[-1]}",
                               hint="the backup role needs REPLICATION and a pg_hba.conf line for "
                                    "`replication` connections") from None
    with conn:
        result = conn.pgconn.exec_(b"IDENTIFY_SYSTEM")  # the simple protocol a replication connection speaks
        if result.ntuples != 1:
            raise UnavailableError(f"IDENTIFY_SYSTEM failed on {env.name!r}")
        system = (result.get_value(0, 0) or b"").decode()
        timeline = int((result.get_value(0, 1) or b"0").decode())
    return system, timeline


def _facts(conn: psycopg.Connection[Any]) -> ServerFacts:
    row = conn.execute(queries.load("pitr/server_facts")).fetchone()
    if row is None:
        raise UnavailableError("the server returned no settings")
    return ServerFacts(*row)


def _relations(conn: psycopg.Connection[Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Which relfilenode is which table, and which database oid is which name: db-find-target names what
    a DROP or TRUNCATE took away from the backup's own record."""
    files = dict(conn.execute(queries.load("pitr/relation_files")).fetchall())
    databases = dict(conn.execute(queries.load("pitr/databases")).fetchall())
    return files, databases


def _estimate(conn: psycopg.Connection[Any]) -> int:
    try:
        row = conn.execute(queries.load("pitr/size_estimate")).fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def _parent(settings: Settings, env: Environment, repository: Repository, system: str) -> Manifest:
    """The newest complete physical backup of this cluster: the base an incremental builds on."""
    entries = [entry.manifest for entry in catalog.trusted_scan(settings, env, repository)
               if entry.manifest is not None and entry.type in ("full", "incremental")
               and entry.manifest.system_identifier == system]
    if not entries:
        raise UsageError(f"environment {env.name!r} has no full backup of this cluster to build an incremental on",
                         hint=f"make db-backup env={env.name} type=full first")
    return entries[-1]


class _Walked:
    """Reads a server-compressed stream and walks its zstd frame headers as the bytes pass, without decompressing
    them (storage/zstd_frames.py): a stream that is not zstd, or does not end where its last frame does, fails
    the backup instead of a later restore."""

    def __init__(self, source: GrowingFile, file: str) -> None:
        self.source = source
        self.file = file
        self.walker = FrameWalker()

    def read(self, size: int = -1, /) -> bytes:
        data = self.source.read(size)
        try:
            self.walker.feed(data)
        except ZstdFormatError as exc:
            raise FailedError(f"pg_basebackup's {self.file} {exc.problem}") from None
        return data

    def check(self) -> None:
        if not self.walker.complete:
            raise FailedError(f"pg_basebackup's {self.file} ends before its zstd stream does (the stream "
                              f"{self.walker.why_incomplete()})")


def _argv(program: Path, folder: Path, name: str, facts: ServerFacts, client_major: int, level: int, jobs: int,
          incremental: Path | None) -> list[str | Path]:
    argv: list[str | Path] = [program, f"--pgdata={folder}", "--format=tar", "--wal-method=stream",
                              "--checkpoint=fast", "--no-sync", "--verbose", f"--label={name}"]
    if facts.version_num >= SERVER_COMPRESSION_FROM and client_major >= 15:
        argv.append(f"--compress=server-zstd:level={level},workers={jobs}")
    if incremental is not None:
        argv.append(f"--incremental={incremental}")
    return argv


def check_source(kind: str, *, from_replica: bool) -> None:
    """Only a full backup is taken from a replica: an incremental one is read against the WAL summaries of the
    server that took its parent, and those are the primary's."""
    if from_replica and kind != "full":
        raise UsageError(f"type={kind} from a replica is not offered: an incremental backup builds on the primary's "
                         "WAL summaries", hint=f"type=full from=replica, or type={kind} without replica= or from=")


def create(settings: Settings, env: Environment, kind: str, *, notify: Callable[[str], None] = lambda _: None,
           progress: Callable[[int], Progress | None] = lambda _: None, source: Target | None = None
           ) -> PhysicalReport:
    """Take a full (or, on 17+, incremental) physical backup of env's cluster into its repository.

    `source` is a streaming replica to copy instead of the primary (replicas/routing.py): pg_basebackup runs
    against a standby as it does against a primary, and `-X stream` takes the WAL the backup needs from the
    standby itself, so the backup never waits for the primary to switch or archive a segment. The copy is the
    same cluster (system identifier, timeline) at the replica's replay position; the manifest says where it
    was taken. The archive the backup is a base for stays the primary's."""
    if kind not in ("full", "incremental"):
        raise UsageError(f"type={kind} is not a physical backup type")
    check_source(kind, from_replica=source is not None)
    recipient_keys = age_keys.recipients(settings, env)
    recipients = age_keys.parse_recipients(recipient_keys)
    age_keys.signer(settings, env)  # before any work: a backup that cannot be signed would never be used
    repository = open_repository(settings, env)
    level, jobs = env.backup.compress_level, env.backup.jobs
    started = datetime.now(UTC)
    clock = time.monotonic()
    with connect(settings, env, "backup", purpose="backup", target=source) as conn:
        facts = _facts(conn)
        files, databases = _relations(conn)
        estimate = _estimate(conn)
    system, timeline = identify_system(settings, env, source)
    origin = "primary" if source is None else f"replica {source.name}"
    client = binaries.client_for(facts.major, settings.cache_dir)
    parent: Manifest | None = None
    if kind == "incremental":
        if facts.version_num < INCREMENTAL_FROM:
            raise UsageError(f"incremental backups need PostgreSQL 17 or newer; {env.name} runs {facts.version}",
                             hint=f"make db-backup env={env.name} type=full")
        if facts.summarize_wal != "on":
            raise RefusedError(f"incremental backups need summarize_wal = on on {env.name}",
                               hint=f"cuisine-db wal enable --env {env.name} turns it on (no restart needed)")
        parent = _parent(settings, env, repository, system)
    name = _unique_name(repository, env, kind)
    key_prefix = prefix(str(name))
    compression = "server-zstd" if facts.version_num >= SERVER_COMPRESSION_FROM and client.major >= 15 \
        else "client-zstd"
    notify(f"{env.name}: physical {kind} backup of the cluster from the {origin} (PostgreSQL {facts.version}, "
           f"pg_basebackup "
           f"{client.version}, {compression} level {level}) as {name} into {repository.url}"
           + (f", on top of {parent.name}" if parent else ""))
    report = progress(estimate)
    with scratch(settings, f"basebackup-{name}") as work:
        folder = work / "out"
        incremental_from: Path | None = None
        if parent is not None:
            incremental_from = work / "parent_backup_manifest"
            _fetch_manifest(settings, env, repository, parent, incremental_from)
        log = work / "pg_basebackup.log"
        argv = _argv(client.program("pg_basebackup"), folder, str(name), facts, client.major, level, jobs,
                     incremental_from)

        def handle(file: str, growing: GrowingFile) -> tuple[StoredObject, int | None]:
            """What was stored, and its exact plain size (None: a server-compressed stream, bounded later)."""
            try:
                if file.endswith(".zst"):
                    walked = _Walked(growing, file)
                    stored = store(repository, key_prefix + object_name(file), walked, recipients,
                                   compress=False, progress=report)
                    walked.check()
                    return stored, None
                stored = store(repository, key_prefix + object_name(file), growing, recipients, level=level,
                               threads=jobs if file == "base.tar" else 0, progress=report)
                return stored, stored.plain_size
            finally:
                with contextlib.suppress(FileNotFoundError):
                    (folder / file).unlink()

        try:
            folder.mkdir()  # pg_basebackup takes an empty folder; it must exist before it is watched
            with log.open("wb") as errors:
                process = spawn(argv, env=client_environ(settings, env, purpose="backup", target=source),
                                stderr=errors)
                stored = stream_folder(process, folder, handle, workers=jobs + 2,
                                       wanted=lambda f: f.endswith((".tar", ".tar.zst")) and not f.startswith(WAL))
            if process.returncode != 0:
                raise ToolError("pg_basebackup", process.returncode, log.read_text(errors="replace"))
            stopped = datetime.now(UTC)
            # pg_wal.tar is written out of order (each segment pre-padded, headers rewritten on close): it is
            # read only once pg_basebackup is done with it.
            for file in sorted(f.name for f in folder.iterdir() if f.name.startswith(WAL)):
                finished = GrowingFile(folder / file)
                finished.finish()
                try:
                    stored[file] = handle(file, finished)
                finally:
                    finished.close()
            manifest_bytes = (folder / MANIFEST_FILE).read_bytes()
            bounds = plain_bounds(manifest_bytes)
            stored[MANIFEST_FILE] = _store_small(repository, key_prefix + object_name(MANIFEST_FILE),
                                                 manifest_bytes, recipients, level)
        except BaseException:
            with contextlib.suppress(Exception):
                repository.delete(info.key for info in repository.list(key_prefix))
            raise
    ranges = json.loads(manifest_bytes).get("WAL-Ranges") or [{}]
    start_lsn, stop_lsn = ranges[0].get("Start-LSN", ""), ranges[-1].get("End-LSN", "")
    timeline = int(ranges[-1].get("Timeline", timeline))
    segment = facts.wal_segment_size
    objects = tuple(ObjectEntry(name=object_name(file), file=plain_file(file), size=item.size, sha256=item.sha256,
                                plain_size=bounds.of(plain_file(file)) if plain is None else plain,
                                plain_bound=plain is None) for file, (item, plain) in sorted(stored.items()))
    manifest = Manifest(
        name=str(name), env=env.name, type=kind, database=database_of(settings, env), server_version=facts.version,
        server_version_num=facts.version_num, system_identifier=system, timeline=timeline, start_lsn=start_lsn,
        stop_lsn=stop_lsn, started_at=started, finished_at=datetime.now(UTC),
        tool={"cuisine-db": __version__, "pg_basebackup": client.version},
        dump={"method": "pg_basebackup", "format": "tar", "wal": "stream", "compression": compression,
              "wal_segment_size": segment, "data_checksums": facts.data_checksums, "stop_time": stopped.isoformat(),
              "start_wal": wal_names.segment_name(int(ranges[0].get("Timeline", timeline)), wal_names.segment_of(
                  wal_names.parse_lsn(start_lsn), segment), segment),
              "stop_wal": wal_names.segment_name(timeline, wal_names.segment_of(wal_names.parse_lsn(stop_lsn),
                                                                                segment), segment),
              "relations": files, "databases": databases, "source": origin},
        encryption={"algorithm": "age-x25519", "recipients": [age_keys.fingerprint(r) for r in recipient_keys]},
        compression={"algorithm": "zstd", "level": level, "where": compression.split("-")[0]},
        tables=(), objects=objects, depends_on=parent.name if parent else None,
    )
    manifest = catalog.publish(settings, env, repository, manifest)
    return PhysicalReport(
        name=str(name), env=env.name, type=kind, repository=repository.url, objects=len(objects), size=manifest.size,
        plain_size=manifest.plain_size, seconds=round(time.monotonic() - clock, 3), timeline=timeline,
        start_lsn=start_lsn, stop_lsn=stop_lsn, compression=compression, depends_on=manifest.depends_on,
        pg_basebackup=client.version, source=origin, plain_bounded=manifest.plain_bounded,
    )


def _store_small(repository: Repository, key: str, data: bytes, recipients: list[Any], level: int
                 ) -> tuple[StoredObject, int | None]:
    import io

    stored = store(repository, key, io.BytesIO(data), recipients, level=level)
    return stored, len(data)


def _fetch_manifest(settings: Settings, env: Environment, repository: Repository, parent: Manifest,
                    destination: Path) -> None:
    from cuisine_db.backup.objects import BackupSource

    source = BackupSource(repository, parent, age_keys.identities(settings, [env]))
    entry = source.entry(MANIFEST_FILE)
    with destination.open("wb") as handle:
        source.stream(entry, handle)

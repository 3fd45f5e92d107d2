"""Laying a physical backup down into a data directory: each tar object streamed out of the repository (sha256,
age, zstd, checked against the manifest) member by member into its files, every file born the server's OS user's;
an incremental chain is extracted backup by backup and combined with `pg_combinebackup`.
No decrypted copy of an object is ever written anywhere but its place in the data directory.

A backup is not trusted to stay in its folder: every tar member is checked before anything of it is written
(tar_guard.py: no links but the manifest's tablespaces, no hard links, devices or names leaving the folder), every
name is opened relative to its folder and never through a link (tar_files.py, as postgres/safe_files.py does for
every other file written as root), and the backup's server configuration is replaced by the environment's own
(restored_config.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from cuisine_db.backup import catalog, restored_config
from cuisine_db.backup.catalog import Resolved
from cuisine_db.backup.manifest import Manifest, ObjectEntry
from cuisine_db.backup.objects import BackupSource
from cuisine_db.backup.tar_files import TarFiles
from cuisine_db.backup.tar_guard import TarGuard
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, FailedError, UnavailableError, UsageError
from cuisine_db.postgres import binaries, osuser, safe_files
from cuisine_db.postgres.cluster import base_settings
from cuisine_db.postgres.runner import run
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.handoff import Handoff

Progress = Callable[[int], None]
MANIFEST_FILE = "backup_manifest"
PHYSICAL = ("full", "incremental")
WRITE_BATCH = 256 << 10  # plain bytes handed to the writing thread at least at a time (zstd's output varies)


def chain(settings: Settings, env: Environment, resolved: Resolved) -> list[BackupSource]:
    """The backup and, for an incremental, every backup it builds on, oldest (the full one) first."""
    if resolved.manifest.type not in PHYSICAL:
        raise UsageError(f"{resolved.manifest.name} is not a physical backup")
    environments = [env] + ([resolved.source_env] if resolved.source_env is not None else [])
    identities = age_keys.identities(settings, environments)
    sources = [BackupSource(resolved.repository, resolved.manifest, identities)]
    while sources[0].manifest.depends_on:
        parent = catalog.find(settings, env, sources[0].manifest.depends_on)
        if parent.manifest.system_identifier != resolved.manifest.system_identifier:
            raise FailedError(f"{sources[0].manifest.name} depends on {parent.manifest.name}, a backup of another "
                              "cluster: the chain is broken")
        sources.insert(0, BackupSource(parent.repository, parent.manifest, identities))
    return sources


def _destination(entry: ObjectEntry, data: Path, tablespaces: Path) -> Path | None:
    if entry.file == "base.tar":
        return data
    if entry.file == "pg_wal.tar":
        return data / "pg_wal"
    if entry.file.endswith(".tar") and entry.file[:-4].isdigit():
        return tablespaces / entry.file[:-4]
    return None


def tablespace_oids(manifest: Manifest) -> frozenset[str]:
    """The tablespaces a backup holds (`<oid>.tar`): the only `pg_tblspc/<oid>` links its base.tar may carry."""
    return frozenset(e.file[:-4] for e in manifest.objects if e.file.endswith(".tar") and e.file[:-4].isdigit())


def extract(source: BackupSource, data: Path, tablespaces: Path, os_user: str | None,
            progress: Progress | None = None, links_to: Path | None = None) -> None:
    """One backup's objects into `data` (and its tablespaces under `tablespaces/<oid>`, where the pg_tblspc links
    point unless `links_to` names the folder they will be moved to), one thread per object. Every member passes
    TarGuard before a byte of it is written, and TarFiles writes it as the server's OS user's (no `tar -x`: each
    byte is copied once instead of three times, docs/benchmarks.md stop 19), on a thread of its own while the next
    bytes are decompressed on another, and the ones after those read, hashed and decrypted (storage/handoff.py,
    fetch(apart=True)). Anything after pg_basebackup's
    end-of-archive blocks is read too, so the stream's size and sha256 are checked to the end."""
    osuser.give_to(data, os_user)
    links = tablespace_oids(source.manifest)
    targets = [(entry, target) for entry in source.manifest.objects
               if (target := _destination(entry, data, tablespaces)) is not None]
    for _, target in targets:
        osuser.give_to(target, os_user)
    failures: list[BaseException] = []

    def lay(entry: ObjectEntry, target: Path) -> None:
        try:
            files = TarFiles(target, os_user)
            try:
                guard = TarGuard(None, source.key(entry), links if entry.file == "base.tar" else frozenset(), files)
                # Three threads: read, sha256 and age here; zstd (apart); checked and written on the handoff's.
                with Handoff(guard, name=f"write-{entry.file}", batch=WRITE_BATCH) as handoff:
                    source.stream(entry, handoff, progress=progress, apart=True)
            finally:
                files.close()
        except CuisineDbError as exc:
            failures.append(exc)
        except OSError as exc:  # a full disk, a name in the way: said in one line, not a traceback
            failures.append(UnavailableError(f"cannot lay {entry.file} down into {target}: {exc.strerror or exc}",
                                             hint="check the free space and the folder; nothing was moved into "
                                                  "place"))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=lay, args=pair, name=f"lay-{pair[0].file}") for pair in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]  # a refused member, a damaged object or a failed write: the lay-down is not used
    manifest_entry = next((e for e in source.manifest.objects if e.file == MANIFEST_FILE), None)
    if manifest_entry is not None:
        with safe_files.create(data / MANIFEST_FILE, owner=os_user) as fd, os.fdopen(os.dup(fd), "wb") as handle:
            source.stream(manifest_entry, handle, progress=progress)
    _relocate_tablespaces(data, links_to or tablespaces, os_user, links)


def _relocate_tablespaces(data: Path, tablespaces: Path, os_user: str | None, oids: frozenset[str]) -> None:
    """The backup's tablespace_map names the source's folders; point it at the ones laid down here (only the
    tablespaces the manifest lists), and its pg_tblspc links too. Verification lays tablespaces into pg_tblspc
    itself and starts nothing: the map stays as the backup has it, which pg_verifybackup checks against its size
    and checksum in backup_manifest."""
    if tablespaces == data / "pg_tblspc":
        return
    text = safe_files.read(data / "tablespace_map")
    if text is not None:
        lines = []
        for line in text.decode("utf-8", errors="replace").splitlines():
            oid, _, _ = line.partition(" ")
            if oid in oids:
                lines.append(f"{oid} {tablespaces / oid}")
        safe_files.write(data / "tablespace_map", "\n".join(lines) + ("\n" if lines else ""), owner=os_user)
    links = data / "pg_tblspc"
    if not oids or not links.is_dir() or links.is_symlink():
        return
    ids = safe_files.owner_ids(os_user)
    with safe_files.folder(links) as parent:
        for oid in sorted(oids):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(oid, dir_fd=parent)
            os.symlink(tablespaces / oid, oid, dir_fd=parent)
            if ids is not None:
                os.chown(oid, *ids, dir_fd=parent, follow_symlinks=False)


def lay_down(settings: Settings, sources: list[BackupSource], data: Path, tablespaces: Path, os_user: str | None,
             work: Path, progress: Progress | None = None, *,
             own_settings: Mapping[str, str | int | bool] | None = None,
             keep_settings: Mapping[str, str | None] | None = None, keep_config: bool = False,
             links_to: Path | None = None) -> list[str]:
    """A whole chain into `data`: a full backup directly; an incremental chain through pg_combinebackup.

    Its server configuration is then replaced by `own_settings` (the environment's; by default what a fresh cluster
    of its major version has; `keep_settings` as restored_config.take_over() says): the warnings returned say
    what the backup carried that was not applied.
    `keep_config` leaves the backup's files as they are, for checking them against backup_manifest (no server
    starts on such a folder). `links_to` is where `tablespaces` will be moved once laid down (the links name it)."""
    newest: Manifest = sources[-1].manifest
    if len(sources) == 1:
        extract(sources[0], data, tablespaces, os_user, progress, links_to)
    else:
        _combine(settings, sources, data, tablespaces, os_user, work, progress)
    if keep_config:
        return []
    own = own_settings if own_settings is not None else base_settings(newest.server_major, 5432)
    return restored_config.take_over(data, os_user, own, newest.name, keep_settings)


def _combine(settings: Settings, sources: list[BackupSource], data: Path, tablespaces: Path, os_user: str | None,
             work: Path, progress: Progress | None) -> None:
    newest: Manifest = sources[-1].manifest
    if any(_destination(e, data, tablespaces) not in (data, data / "pg_wal") for s in sources
           for e in s.manifest.objects if e.file.endswith(".tar")):
        raise UsageError(f"{newest.name} is an incremental chain with tablespaces; combine it by hand "
                         "(pg_combinebackup --tablespace-mapping), see docs/break-glass.md")
    parts = work / "chain"
    osuser.give_to(parts, os_user)
    folders = []
    for source in sources:
        folder = parts / source.manifest.name
        extract(source, folder, parts / f"{source.manifest.name}-tablespaces", os_user, progress)
        folders.append(folder)
    program = binaries.find(newest.server_major, settings.cache_dir).program("pg_combinebackup")
    osuser.give_to(data, os_user)  # an empty folder of the server's user: pg_combinebackup fills it
    run([program, f"--output={data}", *folders], user=os_user, timeout=None)
    # pg_combinebackup leaves pg_wal empty: the WAL that makes the newest backup consistent is its own. Moved by
    # the server's user (the folders are its own), so a link planted there leads nowhere it could not go anyway.
    wal = folders[-1] / "pg_wal"
    for item in sorted(wal.iterdir()) if wal.is_dir() else []:
        if item.is_file() and not item.is_symlink() and not (data / "pg_wal" / item.name).exists():
            run(["mv", "--no-clobber", "--", item, data / "pg_wal" / item.name], user=os_user, timeout=None)
    shutil.rmtree(parts, ignore_errors=True)

"""Verification: every object present with its size and sha256, decryptable, a complete zstd stream with the
manifest's row count, and a table of contents pg_restore can read that matches the objects. The result is
recorded next to the backup, so the catalog shows when each backup was last known good."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cuisine_db.backup import backup_names, catalog, toc
from cuisine_db.backup.catalog import Check
from cuisine_db.backup.manifest import MANIFEST, VERIFICATION, ObjectEntry, prefix
from cuisine_db.backup.objects import BackupSource
from cuisine_db.backup.workspace import scratch
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UsageError
from cuisine_db.postgres import binaries
from cuisine_db.storage import Repository
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.pipeline import IntegrityError
from cuisine_db.whoami import who

Progress = Callable[[int], None]
THREADS = 3


@dataclass(frozen=True, slots=True)
class Problem:
    object: str
    problem: str

    def __str__(self) -> str:
        return f"{self.object}: {self.problem}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    name: str
    repository: str
    ok: bool
    objects: int
    bytes: int
    seconds: float
    problems: list[Problem] = field(default_factory=list)
    toc_entries: int = 0
    physical: bool = False  # then toc_entries counts the files pg_verifybackup checked


def _locate(settings: Settings, env: Environment, name: str) -> tuple[Repository, Environment | None]:
    parsed = backup_names.parse(name)
    for _, repository in catalog.search_order(settings, env, parsed.env):
        if next(iter(repository.list(prefix(name))), None) is not None:
            return repository, settings.environments.get(parsed.env)
    raise UsageError(f"no backup named {name}", hint=f"make db-backups env={parsed.env} lists them")


def verify(settings: Settings, env: Environment, reference: str, *,
           progress: Callable[[int], Progress | None] = lambda _: None,
           notify: Callable[[str], None] = lambda _: None) -> VerifyReport:
    """Check a backup (by name, checked against the names the tool writes, or `latest` of env, said which) end to
    end without restoring it, and record the result in the catalog."""
    if reference == "latest":
        resolved = catalog.resolve(settings, env, "latest")
        name = resolved.manifest.name
        notify(f"using backup {name} ({resolved.reason})")
    else:
        backup_names.parse(reference)
        name = reference
    started = time.monotonic()
    repository, source_env = _locate(settings, env, name)
    pinned = [env] + ([source_env] if source_env else [])
    (entry,) = catalog.scan(repository, trust=age_keys.trust(settings, pinned), only=name)
    problems: list[Problem] = []
    checked = size = entries = 0
    manifest_key = prefix(name) + MANIFEST
    if entry.problem:
        problems.append(Problem(manifest_key, entry.problem.split(": ", 1)[-1]))
    elif entry.manifest is None:
        problems.append(Problem(manifest_key, "missing: the backup is incomplete (interrupted or still being written)"))
    else:
        manifest = entry.manifest
        identities = age_keys.identities(settings, [env] + ([source_env] if source_env else []))
        source = BackupSource(repository, manifest, identities)
        present = {info.key: info for info in entry.objects}
        readable = []
        for item in manifest.objects:
            key = source.key(item)
            if key not in present:
                problems.append(Problem(key, "missing from the repository"))
            elif present[key].size != item.size:
                problems.append(Problem(key, f"size {present[key].size} differs from the manifest's {item.size}"))
            else:
                readable.append(item)
        report = progress(sum(item.size for item in readable))

        def check(item: ObjectEntry) -> Problem | None:
            try:
                source.stream(item, None, progress=report)
            except IntegrityError as exc:
                return Problem(exc.key, exc.problem)
            except CuisineDbError as exc:
                if not catalog.counts_as_failure(exc):
                    raise  # bad input or a refusal: nothing was checked, nothing is recorded
                return Problem(source.key(item), exc.message)
            return None

        if manifest.type in backup_names.PHYSICAL_TYPES and len(readable) == len(manifest.objects):
            # Laying it down in scratch reads every object with the same checks, then pg_verifybackup runs.
            from cuisine_db.backup import physical_verify

            found, entries = physical_verify.structure(settings, env, catalog.Resolved(
                entry, manifest, repository, source_env, "named"), progress=report)
            problems += [Problem(where, what) for where, what in found]
        elif manifest.type not in backup_names.PHYSICAL_TYPES:
            with ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="verify") as pool:
                for found_problem in pool.map(check, readable):
                    if found_problem:
                        problems.append(found_problem)
        checked = len(readable)
        size = sum(item.size for item in readable)
        toc_key = prefix(name) + "toc.dat.zst.age"
        if manifest.type in backup_names.PHYSICAL_TYPES:
            pass  # checked above, with the objects
        elif not any(p.object == toc_key for p in problems) and any(i.file == "toc.dat" for i in manifest.objects):
            with scratch(settings, f"verify-{name}") as work:
                try:
                    program = binaries.client_for(manifest.dump_major, settings.cache_dir).program("pg_restore")
                    listed = toc.read_list(program, source.write_toc(work / "toc"))
                except CuisineDbError as exc:
                    problems.append(Problem(toc_key, f"pg_restore --list fails: {exc.message}"))
                    listed = []
            entries = len(listed)
            files = {item.file for item in manifest.objects}
            for dump_id, data in toc.data_files(listed).items():
                if f"{dump_id}.dat" not in files:
                    problems.append(Problem(toc_key, f"lists data of {data.schema}.{data.name} ({dump_id}.dat) "
                                                     "that the backup has no object for"))
        elif not any(i.file == "toc.dat" for i in manifest.objects):
            problems.append(Problem(toc_key, "the manifest lists no table of contents"))
    seconds = round(time.monotonic() - started, 3)
    physical = entry.manifest is not None and entry.manifest.type in backup_names.PHYSICAL_TYPES
    result = VerifyReport(name, repository.url, not problems, checked, size, seconds, problems, entries, physical)
    catalog.record(settings, source_env or env, repository, name, VERIFICATION, Check(
        at=datetime.now(UTC), ok=result.ok, by=who(), seconds=seconds, problems=[str(p) for p in problems],
        details={"objects": checked, "bytes": size, "toc_entries": entries}))
    return result

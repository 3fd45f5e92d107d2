"""The catalog: backups as the repository holds them, their last verification, and what `latest` means."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from cuisine_db.backup import names
from cuisine_db.backup.manifest import MANIFEST, TEST_RESTORE, VERIFICATION, Manifest, prefix
from cuisine_db.backup.names import TableName
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, RefusedError, UsageError
from cuisine_db.storage import ObjectInfo, Repository, open_repository
from cuisine_db.storage.pipeline import IntegrityError

# What `backup=latest` may pick, by purpose: the first group of types that has a complete backup wins, newest
# first within the group. Physical backups (full, or incremental on top of one: the PITR base) take precedence
# for a whole-database restore so that db-apply-logs can follow.
LATEST: dict[str, tuple[tuple[str, ...], ...]] = {
    "restore": (names.PHYSICAL_TYPES, ("logical",)),
    "restore-tables": (("logical",), ("data",), ("tables",)),
    "physical": (names.PHYSICAL_TYPES,),
    "any": (names.TYPES,),
}


@dataclass(frozen=True, slots=True)
class Check:
    """A recorded verification or test restore of a backup."""

    at: datetime
    ok: bool
    by: str
    seconds: float
    problems: list[str]
    details: dict[str, Any]

    def to_json(self) -> bytes:
        body = asdict(self)
        body["at"] = self.at.isoformat()
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Check | None:
        try:
            body = json.loads(data)
            body["at"] = datetime.fromisoformat(body["at"])
            return cls(**body)
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True, slots=True)
class BackupEntry:
    """One backup in a repository: complete (a valid manifest) or not (still being written, killed, damaged)."""

    name: str
    env: str
    type: str
    taken_at: datetime
    complete: bool
    size: int
    manifest: Manifest | None
    verification: Check | None
    test_restore: Check | None
    problem: str | None
    repository: str
    objects: tuple[ObjectInfo, ...]

    @property
    def duration_s(self) -> float | None:
        return self.manifest.duration_s if self.manifest else None


def _entry(repository: Repository, name: str, objects: list[ObjectInfo]) -> BackupEntry | None:
    try:
        parsed = names.parse(name)
    except UsageError:
        return None  # not a folder this tool wrote
    files = {info.key.rsplit("/", 1)[1]: info for info in objects}
    manifest = problem = None
    if MANIFEST in files:
        try:
            manifest = Manifest.from_json(repository.get_bytes(prefix(name) + MANIFEST), prefix(name) + MANIFEST)
        except IntegrityError as exc:
            problem = exc.message
    checks = {}
    for record in (VERIFICATION, TEST_RESTORE):
        if record in files:
            checks[record] = Check.from_json(repository.get_bytes(prefix(name) + record))
    return BackupEntry(
        name=name, env=parsed.env, type=parsed.type, taken_at=parsed.taken_at, complete=manifest is not None,
        size=manifest.size if manifest else sum(info.size for info in objects), manifest=manifest,
        verification=checks.get(VERIFICATION), test_restore=checks.get(TEST_RESTORE), problem=problem,
        repository=repository.url, objects=tuple(objects),
    )


def scan(repository: Repository, *, env: str | None = None, only: str | None = None) -> list[BackupEntry]:
    """Every backup folder in the repository (of one environment, or one name), oldest first."""
    grouped: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in repository.list(prefix(only) if only else "backups/"):
        parts = info.key.split("/")
        if len(parts) == 3:
            grouped[parts[1]].append(info)
    entries = []
    for name in sorted(grouped, key=lambda n: (n.rsplit("-", 1)[-1], n)):
        if env is not None and not name.startswith(f"{env}-"):
            continue
        entry = _entry(repository, name, grouped[name])
        if entry is not None and (env is None or entry.env == env):
            entries.append(entry)
    return entries


def list_backups(settings: Settings, env: Environment, *, include_incomplete: bool = False) -> list[BackupEntry]:
    """The environment's backups in its repository, oldest first; complete ones only unless asked."""
    entries = scan(open_repository(settings, env), env=env.name)
    return entries if include_incomplete else [entry for entry in entries if entry.complete]


def search_order(settings: Settings, env: Environment, backup_env: str) -> list[tuple[Environment, Repository]]:
    """Where a named backup may be: the target environment's repository, then its own environment's."""
    order = [(env, open_repository(settings, env))]
    source = settings.environments.get(backup_env)
    if source is not None and source.name != env.name:
        repository = open_repository(settings, source)
        if repository.url != order[0][1].url:
            order.append((source, repository))
    return order


@dataclass(frozen=True, slots=True)
class Resolved:
    """The backup a command will use, where it is, and why it was chosen."""

    entry: BackupEntry
    manifest: Manifest
    repository: Repository
    source_env: Environment | None
    reason: str


def find(settings: Settings, env: Environment, name: str) -> Resolved:
    """A backup by name (any environment's), complete and with a sound manifest, else a clear error."""
    parsed = names.parse(name)
    for _, repository in search_order(settings, env, parsed.env):
        found = scan(repository, only=name)
        if not found:
            continue
        entry = found[0]
        if entry.problem:
            # Read again for the precise error: a manifest naming unsafe paths is refused (exit 4), not "damaged".
            Manifest.from_json(repository.get_bytes(prefix(name) + MANIFEST), prefix(name) + MANIFEST)
            raise IntegrityError(prefix(name) + MANIFEST, entry.problem.split(": ", 1)[-1])
        if entry.manifest is None:
            raise UsageError(f"backup {name} is incomplete: it has no manifest (interrupted, or still being written)",
                             hint=f"make db-backups env={parsed.env} lists the complete ones")
        return Resolved(entry, entry.manifest, repository, settings.environments.get(parsed.env), "named")
    searched = ", ".join(repository.url for _, repository in search_order(settings, env, parsed.env))
    raise UsageError(f"no backup named {name} in {searched}", hint=f"make db-backups env={parsed.env} lists them")


def _holds(manifest: Manifest, tables: Sequence[TableName]) -> bool:
    return all(match_table(manifest, table) is not None for table in tables)


def match_table(manifest: Manifest, table: TableName) -> str | None:
    """The manifest's qualified name for a table the operator named (unqualified names must be unambiguous)."""
    if table.schema:
        qualified = f"{table.schema}.{table.name}"
        return qualified if manifest.table(qualified) else None
    candidates = [t.qualified for t in manifest.tables if t.name == table.name]
    if len(candidates) > 1:
        raise UsageError(f"table {table.name!r} is ambiguous in backup {manifest.name}: {', '.join(candidates)}",
                         hint="qualify it with its schema, e.g. tables=public.users")
    return candidates[0] if candidates else None


def resolve(settings: Settings, env: Environment, reference: str, *, purpose: str = "any",
            tables: Sequence[TableName] = ()) -> Resolved:
    """`latest` or a name. `latest` is the newest complete backup of `env` that can do what the command asks:
    for a restore the whole database; for a table restore one holding every table asked for."""
    if reference != "latest":
        return find(settings, env, reference)
    repository = open_repository(settings, env)
    entries = [entry for entry in scan(repository, env=env.name) if entry.manifest is not None]
    for kinds in LATEST[purpose]:
        candidates = [entry for entry in entries if entry.type in kinds]
        if tables:
            candidates = [entry for entry in candidates if entry.manifest and _holds(entry.manifest, tables)]
        if candidates:
            newest = candidates[-1]
            manifest = newest.manifest
            if manifest is None:
                continue
            what = f"newest {newest.type} backup of {env.name}"
            if tables:
                what += " holding " + ", ".join(str(table) for table in tables)
            return Resolved(newest, manifest, repository, env, what)
    wanted = "/".join(kind for kinds in LATEST[purpose] for kind in kinds)
    holding = f" holding {', '.join(str(t) for t in tables)}" if tables else ""
    raise UsageError(f"environment {env.name!r} has no complete {wanted} backup{holding} in {repository.url}",
                     hint=f"make db-backup env={env.name} type=logical makes one")


def counts_as_failure(exc: BaseException) -> bool:
    """Whether an error ends a real attempt that failed, and so is recorded against the backup. Bad input and a
    refusal by a safety rail (exit 2 and 4) say nothing about the backup: they leave the catalog as it was."""
    return isinstance(exc, CuisineDbError) and not isinstance(exc, UsageError | RefusedError)


def record(repository: Repository, name: str, which: str, check: Check) -> None:
    """Store a verification or test-restore result next to the backup (the manifest itself never changes).
    A failed check is recorded only for a real attempt (`counts_as_failure`)."""
    repository.put_bytes(prefix(name) + which, check.to_json())

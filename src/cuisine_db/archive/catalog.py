"""Archives in the backup repository: `archives/<env>-archive-<UTC stamp>/`, beside `backups/` and never mixed
with them (retention, `backup=latest` and restores of backups do not see archives: an archive may be the only
copy of its rows).

A folder holds `intent.json` (written first: which table, which cutoff), the objects, `manifest.json` (the
backups' manifest format, type `archive`, written last: without it the archive does not exist and nothing was
deleted), then `verification.json` (the last check, as for backups), `deletion.json` (written when every row
the archive may delete is gone) and `restored.json` (the last time its rows were brought back).
An archive with a manifest and neither of the last two is *pending*: its deletion was interrupted, and the next
run for that table finishes it before archiving anything new.

Every one of these files is signed like a backup's manifest (`<file>.sig`, raw Ed25519 over its exact bytes;
storage/signing.py), and nothing in a file whose signature does not verify against a pinned key is used: a forged
manifest could otherwise make the next run "finish" a deletion of rows it names. Archives made before signatures
are used only by explicit name with trust_unsigned.
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from cuisine_db import records
from cuisine_db.backup.backup_names import STAMP_FORMAT
from cuisine_db.backup.catalog import UNTRUSTED, Check, UntrustedError, search_order
from cuisine_db.backup.manifest import (
    MANIFEST,
    NEXT_SIGNATURE,
    SIGNATURE,
    VERIFICATION,
    Manifest,
    UnsafeManifestError,
)
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UsageError
from cuisine_db.records import Damaged
from cuisine_db.storage import ObjectInfo, Repository, open_repository, signing
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.pipeline import IntegrityError
from cuisine_db.waiting import free_name

T = TypeVar("T")

ROOT = "archives/"
TYPE = "archive"
INTENT = "intent.json"
DELETION = "deletion.json"
RESTORED = "restored.json"
_NAME = re.compile(r"^(?P<env>[a-z][a-z0-9_-]{0,30})-archive-(?P<stamp>\d{8}T\d{6}Z)$")


def prefix(name: str) -> str:
    return f"{ROOT}{name}/"


def make_name(env: str, at: datetime) -> str:
    return f"{env}-{TYPE}-{at.astimezone(UTC).strftime(STAMP_FORMAT)}"


def parse_name(name: str) -> tuple[str, datetime]:
    """An archive name (`production-archive-20250315T010000Z`), or exit 2: it will become a repository key."""
    found = _NAME.match(name)
    if found is None:
        raise UsageError(f"bad archive name {name!r}",
                         hint="names look like production-archive-20250315T010000Z; make db-archives env=E lists them")
    return found["env"], datetime.strptime(found["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)


def unique_name(repository: Repository, env: str) -> str:
    """A name no other archive has: two runs in the same second wait for the next one."""
    return free_name(lambda at: make_name(env, at),
                     lambda name: next(iter(repository.list(prefix(name))), None) is not None)


class _ArchiveRecord:
    """An archive's own JSON records (intent, deletion, restored): datetimes written by str(), as they always were."""

    __slots__ = ()

    def to_json(self) -> bytes:
        return records.encode(self, default=str)


@dataclass(frozen=True, slots=True)
class Intent(_ArchiveRecord):
    """What a run set out to archive, written before its first object: an interrupted export names its table."""

    env: str
    database: str
    table: str
    column: str
    cutoff: datetime
    older_than: str
    started_at: datetime
    by: str


@dataclass(frozen=True, slots=True)
class Outcome(_ArchiveRecord):
    """The end of an archive's deletion, or a restore of it: when, by whom, and the row counts."""

    at: datetime
    by: str
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One archive folder: complete (a sound manifest) or not (being written, interrupted, damaged)."""

    name: str
    env: str
    taken_at: datetime
    manifest: Manifest | None
    intent: Intent | None
    verification: Check | None
    deletion: Outcome | None
    restored: Outcome | None
    problem: str | None
    repository: str
    objects: tuple[ObjectInfo, ...]
    damaged: tuple[Damaged, ...] = ()  # records that are there but unreadable or untrusted (never "none")

    def damage(self, record: str) -> Damaged | None:
        """Why the record `record` (intent.json, verification.json, ...) is damaged, if it is."""
        return next((d for d in self.damaged if d.where.endswith("/" + record)), None)

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    @property
    def table(self) -> str | None:
        if self.manifest is not None:
            return self.manifest.tables[0].qualified
        return self.intent.table if self.intent else None

    @property
    def rows(self) -> int | None:
        return self.manifest.tables[0].rows if self.manifest else None

    @property
    def pending(self) -> bool:
        """Exported and verified, but its deletion has not finished (and it was not brought back since); not known
        while either record is damaged."""
        return (self.complete and self.deletion is None and self.restored is None
                and self.damage(DELETION) is None and self.damage(RESTORED) is None)

    @property
    def state(self) -> str:
        if self.problem or self.damage(DELETION) or self.damage(RESTORED):
            return "damaged"
        if not self.complete:
            return "incomplete"
        if self.restored is not None:
            return "restored"
        return "deleted" if self.deletion is not None else "deletion pending"


MAX_FILE = 64 << 20


def signature_of(file: str) -> str:
    """Where a file's signature is: `manifest.sig` (as for backups), else `<file>.sig`."""
    return SIGNATURE if file == MANIFEST else f"{file}.sig"


def _trusted(repository: Repository, sizes: dict[str, int], name: str, file: str, trust: signing.Trust,
             trust_unsigned: bool) -> bytes | None:
    """A file of the archive's folder if its signature verifies (or it is unsigned and trust_unsigned says so);
    None when it is absent; signing.Untrusted when it is there but not trusted."""
    if file not in sizes:
        return None
    if sizes[file] > MAX_FILE:
        raise signing.Untrusted(f"{file} is larger than any this tool writes")
    data = repository.get_bytes(prefix(name) + file)
    signature = (repository.get_bytes(prefix(name) + signature_of(file))
                 if sizes.get(signature_of(file)) == signing.SIGNATURE_SIZE else None)
    try:
        trust.verify(data, signature)
    except signing.Untrusted as exc:
        # `backup reencrypt` swaps a manifest as a backup's: manifest.next.sig, manifest.json, manifest.sig; killed
        # between the last two, the manifest there verifies against manifest.next.sig only.
        if file == MANIFEST and sizes.get(NEXT_SIGNATURE) == signing.SIGNATURE_SIZE:
            with contextlib.suppress(signing.Untrusted):
                trust.verify(data, repository.get_bytes(prefix(name) + NEXT_SIGNATURE))
                return data
        if not (trust_unsigned and exc.why == "unsigned"):
            raise
    return data


def _record(repository: Repository, sizes: dict[str, int], name: str, file: str, trust: signing.Trust,
            trust_unsigned: bool, kind: type[T]) -> T | None:
    """A record of the archive: None when absent or unsigned (an unsigned record is as good as none, unless
    trust_unsigned says otherwise); DamagedRecord naming it when it is there but untrusted or unreadable."""
    where = f"{repository.url.rstrip('/')}/{prefix(name)}{file}"
    try:
        data = _trusted(repository, sizes, name, file, trust, trust_unsigned)
    except signing.Untrusted as exc:
        if exc.why == "unsigned":
            return None
        raise records.DamagedRecord(where, f"untrusted: {exc.why}") from None
    return None if data is None else records.decode(kind, data, where)


def _entry(repository: Repository, name: str, objects: list[ObjectInfo], trust: signing.Trust,
           trust_unsigned: bool) -> ArchiveEntry | None:
    try:
        env, taken = parse_name(name)
    except UsageError:
        return None  # not a folder this tool wrote
    sizes = {info.key.rsplit("/", 1)[1]: info.size for info in objects}
    manifest = problem = None
    if MANIFEST in sizes:
        key = prefix(name) + MANIFEST
        try:
            data = _trusted(repository, sizes, name, MANIFEST, trust, trust_unsigned)
            if data is not None:
                manifest = Manifest.from_json(data, key)
                if manifest.type != TYPE or len(manifest.tables) != 1:
                    manifest, problem = None, f"{key}: not an archive's manifest"
        except signing.Untrusted as exc:
            problem = f"{key}: {UNTRUSTED}{exc.why}"
        except UnsafeManifestError as exc:
            problem = f"{key}: {UNTRUSTED}{exc.problem}"
        except IntegrityError as exc:
            problem = exc.message
    damaged: list[Damaged] = []

    def read(file: str, kind: type[T]) -> T | None:
        try:
            return _record(repository, sizes, name, file, trust, trust_unsigned, kind)
        except records.DamagedRecord as exc:
            damaged.append(Damaged.of(exc))
            return None

    intent = read(INTENT, Intent)
    verification = read(VERIFICATION, Check)
    deletion = read(DELETION, Outcome)
    restored = read(RESTORED, Outcome)
    return ArchiveEntry(name, env, taken, manifest, intent, verification, deletion, restored, problem,
                        repository.url, tuple(objects), tuple(damaged))


def scan(repository: Repository, *, trust: signing.Trust, env: str | None = None, only: str | None = None,
         trust_unsigned: bool = False) -> list[ArchiveEntry]:
    """Every archive folder (of one environment, or one name), oldest first; only trusted files are used."""
    grouped: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in repository.list(prefix(only) if only else ROOT):
        parts = info.key.split("/")
        if len(parts) == 3:
            grouped[parts[1]].append(info)
    entries = []
    for name in sorted(grouped, key=lambda n: (n.rsplit("-", 1)[-1], n)):
        entry = _entry(repository, name, grouped[name], trust, trust_unsigned)
        if entry is not None and (env is None or entry.env == env):
            entries.append(entry)
    return entries


def trusted_scan(settings: Settings, env: Environment, repository: Repository | None = None) -> list[ArchiveEntry]:
    return scan(repository or open_repository(settings, env), trust=age_keys.trust(settings, [env]), env=env.name)


def sign_and_put(settings: Settings, env: Environment, repository: Repository, key: str, body: bytes, *,
                 overwrite: bool = True, required: bool = True) -> None:
    """Store `body` at `key` with its signature at `key.sig` (first: the file is the mark). Without the signing
    key a `required` file is an error; a record is then stored unsigned (and is not trusted)."""
    try:
        signer = age_keys.signer(settings, env, create_default=required)
    except CuisineDbError:
        if required:
            raise
        signer = None
    if signer is not None:
        folder, _, file = key.rpartition("/")
        repository.put_bytes(f"{folder}/{signature_of(file)}", signer.sign(body), overwrite=True)
    repository.put_bytes(key, body, overwrite=overwrite)


def list_archives(settings: Settings, env: Environment) -> list[ArchiveEntry]:
    return trusted_scan(settings, env)


@dataclass(frozen=True, slots=True)
class Found:
    entry: ArchiveEntry
    manifest: Manifest
    repository: Repository
    source_env: Environment | None


def find(settings: Settings, env: Environment, reference: str, table: str | None = None, *,
         trust_unsigned: bool = False) -> Found:
    """An archive by name (any environment's, in env's repository or its own), or `latest`: env's newest
    complete (trusted) archive (of `table`, a qualified name, when given)."""
    if reference == "latest":
        repository = open_repository(settings, env)
        complete = [(e, e.manifest) for e in trusted_scan(settings, env, repository) if e.manifest is not None
                    and (table is None or e.table == table)]
        if not complete:
            of = f" of {table}" if table else ""
            raise UsageError(f"environment {env.name!r} has no archive{of} in {repository.url}",
                             hint=f"make db-archives env={env.name} lists them")
        newest, manifest = complete[-1]
        return Found(newest, manifest, repository, env)
    archive_env, _ = parse_name(reference)
    for source, repository in search_order(settings, env, archive_env):
        found = scan(repository, trust=age_keys.trust(settings, [env, source]), only=reference,
                     trust_unsigned=trust_unsigned)
        if not found:
            continue
        entry = found[0]
        if entry.problem and UNTRUSTED in entry.problem:
            why = entry.problem.split(UNTRUSTED, 1)[1]
            raise UntrustedError(prefix(reference) + MANIFEST, f"untrusted ({why}): refused",
                                 hint="an archive made before signatures can be used by name with trust_unsigned=1"
                                 if why == "unsigned" else "docs/security.md: someone may have written to the "
                                 "repository")
        if entry.problem:
            raise IntegrityError(prefix(reference) + MANIFEST, entry.problem.split(": ", 1)[-1])
        if entry.manifest is None:
            raise UsageError(f"archive {reference} is incomplete: it has no manifest (interrupted, or being written; "
                             "no row was deleted for it)", hint=f"make db-archives env={archive_env} lists them")
        return Found(entry, entry.manifest, repository, settings.environments.get(archive_env))
    raise UsageError(f"no archive named {reference}", hint=f"make db-archives env={archive_env} lists them")


def record(settings: Settings, env: Environment, repository: Repository, name: str, which: str, body: bytes) -> None:
    """Store a verification, deletion or restore record next to the archive (the manifest never changes), signed
    where the signing key is."""
    sign_and_put(settings, env, repository, prefix(name) + which, body, required=False)

"""The catalog: backups as the repository holds them, their last verification, and what `latest` means."""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cuisine_db import records
from cuisine_db.backup import backup_names, watermark
from cuisine_db.backup.backup_names import TableName
from cuisine_db.backup.manifest import (
    MANIFEST,
    NEXT_SIGNATURE,
    SIGNATURE,
    TEST_RESTORE,
    VERIFICATION,
    Manifest,
    UnsafeManifestError,
    prefix,
)
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import EXIT_REFUSED, CuisineDbError, RefusedError, UsageError
from cuisine_db.records import Damaged
from cuisine_db.storage import ObjectInfo, Repository, open_repository, signing
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.pipeline import IntegrityError

# What `backup=latest` may pick, by purpose: the first group of types that has a complete backup wins, newest
# first within the group. Physical backups (full, or incremental on top of one: the PITR base) take precedence
# for a whole-database restore so that db-apply-logs can follow.
SIGNATURE_SUFFIX = ".sig"  # a record's signature: verification.json.sig, test-restore.json.sig
LATEST: dict[str, tuple[tuple[str, ...], ...]] = {
    "restore": (backup_names.PHYSICAL_TYPES, ("logical",)),
    "restore-tables": (("logical",), ("data",), ("tables",)),
    "physical": (backup_names.PHYSICAL_TYPES,),
    "any": (backup_names.TYPES,),
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
        return records.encode(self)

    @classmethod
    def from_json(cls, data: bytes, where: str = "a check record") -> Check:
        """A record's bytes as a Check (the signed body's `backup` is not part of it), or DamagedRecord."""
        body = records.decode(dict, data, where)
        body.pop("backup", None)
        return records.from_body(cls, body, where)


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
    signer: str | None = None  # the id of the trusted key that signed it (or why it is used unsigned)
    damaged: tuple[Damaged, ...] = ()  # records that are there but unreadable or untrusted (never "never")

    @property
    def duration_s(self) -> float | None:
        return self.manifest.duration_s if self.manifest else None

    def damage(self, record: str) -> Damaged | None:
        """Why the record `record` (verification.json, test-restore.json) is damaged, if it is."""
        return next((d for d in self.damaged if d.where.endswith("/" + record)), None)


# A clock a little ahead of ours is not an attack; a backup dated further ahead is never trusted.
FUTURE_SKEW = timedelta(minutes=10)
# Nothing the tool writes as a manifest or record is this large: a bigger one is not read at all.
MAX_MANIFEST = 64 << 20
MAX_RECORD = 1 << 20
UNTRUSTED = "untrusted: "


def _signature(repository: Repository, files: dict[str, ObjectInfo], key: str) -> bytes | None:
    name = key.rsplit("/", 1)[1]
    info = files.get(name)
    if info is None or info.size != signing.SIGNATURE_SIZE:
        return None
    return repository.get_bytes(key)


def _verify_manifest(repository: Repository, files: dict[str, ObjectInfo], name: str, data: bytes,
                     trust: signing.Trust) -> str:
    """The trusted key that signed manifest.json: against manifest.sig, else (a `backup reencrypt` interrupted
    while it swapped the manifest) against manifest.next.sig."""
    try:
        return trust.verify(data, _signature(repository, files, prefix(name) + SIGNATURE))
    except signing.Untrusted:
        if NEXT_SIGNATURE not in files:
            raise
        with contextlib.suppress(signing.Untrusted):
            return trust.verify(data, _signature(repository, files, prefix(name) + NEXT_SIGNATURE))
        raise


def _check(repository: Repository, files: dict[str, ObjectInfo], name: str, record: str,
           trust: signing.Trust) -> Check | None:
    """A verification or test-restore record: None when there is none (or it is unsigned: a restore host without
    the signing key writes it so, and it is never trusted); DamagedRecord, naming it, when it is there but too
    large, not signed by a trusted key, not JSON of a record, or naming another backup."""
    info = files.get(record)
    if info is None:
        return None
    key = prefix(name) + record
    where = f"{repository.url.rstrip('/')}/{key}"
    if info.size > MAX_RECORD:
        raise records.DamagedRecord(where, f"{info.size} bytes, more than any record this tool writes")
    data = repository.get_bytes(key)
    try:
        trust.verify(data, _signature(repository, files, key + SIGNATURE_SUFFIX))
    except signing.Untrusted as exc:
        if exc.why == "unsigned":
            return None
        raise records.DamagedRecord(where, f"untrusted: {exc.why}") from None
    if records.decode(dict, data, where).get("backup") != name:
        raise records.DamagedRecord(where, f"it does not name backup {name}")
    return Check.from_json(data, where)


def _checks(repository: Repository, files: dict[str, ObjectInfo], name: str,
            trust: signing.Trust) -> tuple[dict[str, Check | None], tuple[Damaged, ...]]:
    found: dict[str, Check | None] = {}
    damaged = []
    for record in (VERIFICATION, TEST_RESTORE):
        try:
            found[record] = _check(repository, files, name, record, trust)
        except records.DamagedRecord as exc:
            found[record] = None
            damaged.append(Damaged.of(exc))
    return found, tuple(damaged)


def _entry(repository: Repository, name: str, objects: list[ObjectInfo], trust: signing.Trust,
           trust_unsigned: bool, now: datetime) -> BackupEntry | None:
    try:
        parsed = backup_names.parse(name)
    except UsageError:
        return None  # not a folder this tool wrote
    files = {info.key.rsplit("/", 1)[1]: info for info in objects}
    manifest = problem = None
    signer = None
    if MANIFEST in files:
        key = prefix(name) + MANIFEST
        try:
            if files[MANIFEST].size > MAX_MANIFEST:
                raise signing.Untrusted(f"its manifest is {files[MANIFEST].size} bytes, more than any this tool writes")
            data = repository.get_bytes(key)
            # The signature first: nothing in an unsigned manifest (name, paths, sizes) is used before it verifies.
            try:
                signer = _verify_manifest(repository, files, name, data, trust)
            except signing.Untrusted as exc:
                if not (trust_unsigned and exc.why == "unsigned"):
                    raise
                signer = "unsigned (trusted by trust_unsigned=1)"
            manifest = Manifest.from_json(data, key)
            if parsed.taken_at > now + FUTURE_SKEW or manifest.started_at > now + FUTURE_SKEW:
                ahead = max(parsed.taken_at, manifest.started_at)
                raise signing.Untrusted(f"dated in the future ({ahead:%Y-%m-%d %H:%M} UTC)")
        except signing.Untrusted as exc:
            manifest, problem = None, UNTRUSTED + exc.why
        except UnsafeManifestError as exc:
            manifest, problem = None, UNTRUSTED + exc.message
        except IntegrityError as exc:
            manifest, problem = None, exc.message
    checks, damaged = _checks(repository, files, name, trust)
    return BackupEntry(
        name=name, env=parsed.env, type=parsed.type, taken_at=parsed.taken_at, complete=manifest is not None,
        size=manifest.size if manifest else sum(info.size for info in objects), manifest=manifest,
        verification=checks.get(VERIFICATION), test_restore=checks.get(TEST_RESTORE), problem=problem,
        repository=repository.url, objects=tuple(objects), signer=signer, damaged=damaged,
    )


def _no_rollback(entries: list[BackupEntry], mark: watermark.Mark | watermark.Unreadable | None
                 ) -> list[BackupEntry]:
    """Within one environment, sequence numbers grow with names: a signed manifest whose sequence is not above an
    older-named one's (or the local high-water mark's, for a newer name) is an old backup presented as new. Where
    the mark is damaged the check cannot run: no signed backup of that environment is trusted (fail safe)."""
    checked: list[BackupEntry] = []
    highest: dict[str, tuple[int, str]] = {}  # per environment, over names of strictly older seconds
    # Names of one second do not say which backup came first (a full and a tables backup can start in the same
    # second: the demo did): the best of the current second joins `highest` only when a later second begins.
    second: dict[str, tuple[datetime, tuple[int, str] | None]] = {}
    for entry in entries:
        sequence = entry.manifest.sequence if entry.manifest is not None else None
        if sequence is None:
            checked.append(entry)
            continue
        at, best = second.get(entry.env, (entry.taken_at, None))
        if at != entry.taken_at:
            if best is not None and (entry.env not in highest or best[0] > highest[entry.env][0]):
                highest[entry.env] = best
            at, best = entry.taken_at, None
        second[entry.env] = (at, best)
        if isinstance(mark, watermark.Unreadable) and entry.env == mark.env:
            checked.append(replace(entry, manifest=None, complete=False, problem=UNTRUSTED + mark.problem,
                                   signer=None))
            continue
        before = highest.get(entry.env)
        seen = mark if isinstance(mark, watermark.Mark) and entry.env == mark_env(mark) else None
        why = None
        if before is not None and sequence <= before[0]:
            why = f"rolled back: its sequence {sequence} is not above {before[0]} of the older {before[1]}"
        elif seen is not None and entry.taken_at > backup_names.parse(seen.name).taken_at and sequence <= seen.sequence:
            why = f"rolled back: its sequence {sequence} is not above {seen.sequence}, already seen here ({seen.name})"
        if why is not None:
            checked.append(replace(entry, manifest=None, complete=False, problem=UNTRUSTED + why, signer=None))
            continue
        if best is None or sequence > best[0]:
            second[entry.env] = (at, (sequence, entry.name))
        checked.append(entry)
    return checked


def mark_env(mark: watermark.Mark) -> str:
    return backup_names.parse(mark.name).env


def scan(repository: Repository, *, trust: signing.Trust, env: str | None = None, only: str | None = None,
         trust_unsigned: bool = False, mark: watermark.Mark | watermark.Unreadable | None = None,
         now: datetime | None = None) -> list[BackupEntry]:
    """Every backup folder in the repository (of one environment, or one name), oldest first. Only a manifest
    signed by a trusted key, named as its folder, not dated in the future and not rolled back has `manifest`;
    any other says why in `problem` ("untrusted: ...")."""
    now = now or datetime.now(UTC)
    grouped: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in repository.list(prefix(only) if only else "backups/"):
        parts = info.key.split("/")
        if len(parts) == 3:
            grouped[parts[1]].append(info)
    entries = []
    for name in sorted(grouped, key=lambda n: (n.rsplit("-", 1)[-1], n)):
        if env is not None and not name.startswith(f"{env}-"):
            continue
        entry = _entry(repository, name, grouped[name], trust, trust_unsigned, now)
        if entry is not None and (env is None or entry.env == env):
            entries.append(entry)
    return _no_rollback(entries, mark)


def trusted_scan(settings: Settings, env: Environment, repository: Repository | None = None) -> list[BackupEntry]:
    """`scan` of the environment's own backups with its pinned keys and high-water mark, which it then raises."""
    repository = repository or open_repository(settings, env)
    entries = scan(repository, trust=age_keys.trust(settings, [env]), env=env.name,
                   mark=watermark.read(settings, env))
    _raise_mark(settings, env, entries)
    return entries


def _raise_mark(settings: Settings, env: Environment, entries: list[BackupEntry]) -> None:
    signed = [(e.manifest.sequence, e.name, e.manifest.started_at) for e in entries
              if e.manifest is not None and e.manifest.sequence is not None and e.env == env.name]
    if signed:
        watermark.save(settings, env, watermark.Mark(*max(signed)))


def list_backups(settings: Settings, env: Environment, *, include_incomplete: bool = False) -> list[BackupEntry]:
    """The environment's backups in its repository, oldest first; complete (trusted) ones only unless asked."""
    entries = trusted_scan(settings, env)
    return entries if include_incomplete else [entry for entry in entries if entry.complete]


def next_sequence(settings: Settings, env: Environment, repository: Repository) -> int:
    """The sequence number of the environment's next backup: above everything seen here and in the repository."""
    mark = watermark.read(settings, env)
    if isinstance(mark, watermark.Mark):
        return mark.sequence + 1
    # No mark, or a damaged one (left as it is, the backups untrusted until it is rebuilt): the repository's order.
    signed = [e.manifest.sequence for e in scan(repository, trust=age_keys.trust(settings, [env]), env=env.name)
              if e.manifest is not None and e.manifest.sequence is not None]
    return max(signed, default=0) + 1


def publish(settings: Settings, env: Environment, repository: Repository, manifest: Manifest) -> Manifest:
    """Sign and store a backup's manifest: the local high-water mark raised to its sequence first, then the
    signature, then manifest.json (written last: from then on the backup exists).

    The mark goes first so that a kill -9 between the steps never hands one sequence to two backups: with the mark
    raised after the manifest, a run killed in between left a complete backup the mark had not seen, the next run
    took the same sequence, and the catalog rightly judged that newer backup "rolled back" (untrusted). A mark
    naming a backup that never got its manifest is harmless: only newer names are held to it."""
    signer = age_keys.signer(settings, env)
    signed = replace(manifest, sequence=next_sequence(settings, env, repository), signer=signer.key_id)
    body = signed.to_json()
    if signed.sequence is not None:
        watermark.save(settings, env, watermark.Mark(signed.sequence, signed.name, signed.started_at))
    repository.put_bytes(prefix(manifest.name) + SIGNATURE, signer.sign(body), overwrite=False)
    repository.put_bytes(prefix(manifest.name) + MANIFEST, body, overwrite=False)
    return signed


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


class UntrustedError(IntegrityError):
    """A backup whose manifest is not signed by a trusted key (or is rolled back, or dated in the future): never
    used (exit 4, naming the object)."""

    exit_code = EXIT_REFUSED


def find(settings: Settings, env: Environment, name: str, *, trust_unsigned: bool = False) -> Resolved:
    """A backup by name (any environment's), complete and with a trusted manifest, else a clear error. An unsigned
    backup (made before signatures) is used only when `trust_unsigned` says so."""
    parsed = backup_names.parse(name)
    for source, repository in search_order(settings, env, parsed.env):
        pinned = [env, source] + ([settings.environments[parsed.env]] if parsed.env in settings.environments else [])
        found = scan(repository, trust=age_keys.trust(settings, pinned), only=name, trust_unsigned=trust_unsigned,
                     mark=watermark.read(settings, source) if source.name == parsed.env else None)
        if not found:
            continue
        entry = found[0]
        if entry.problem and entry.problem.startswith(UNTRUSTED):
            why = entry.problem[len(UNTRUSTED):]
            hint = ("only a backup made before signatures existed may be used unsigned, by name, with trust_unsigned=1 "
                    f"(--trust-unsigned); docs/break-glass.md shows how to check {SIGNATURE} by hand"
                    if why == "unsigned" else "docs/security.md: someone may have written to the repository")
            raise UntrustedError(prefix(name) + MANIFEST, f"untrusted ({why.removesuffix(': refused')}): refused",
                                 hint=hint)
        if entry.problem:
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
            tables: Sequence[TableName] = (), trust_unsigned: bool = False) -> Resolved:
    """`latest` or a name. `latest` is the newest complete backup of `env` that can do what the command asks:
    for a restore the whole database; for a table restore one holding every table asked for."""
    if reference != "latest":
        return find(settings, env, reference, trust_unsigned=trust_unsigned)
    repository = open_repository(settings, env)
    mark = watermark.read(settings, env)
    if isinstance(mark, watermark.Unreadable):
        raise UntrustedError(mark.where, f"is damaged ({mark.why}): no backup of {env.name} can be checked against "
                             "rollback, so none is `latest`; refused",
                             hint=f"docs/security.md: check the repository, then cuisine-db backup rebuild-watermark "
                                  f"--env {env.name}")
    # Only trusted backups: an unsigned one is never `latest`, whatever trust_unsigned says.
    entries = [entry for entry in trusted_scan(settings, env, repository) if entry.manifest is not None]
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


def record(settings: Settings, env: Environment, repository: Repository, name: str, which: str, check: Check) -> None:
    """Store a verification or test-restore result next to the backup (the manifest itself never changes), signed
    where the signing key is (`<which>.sig`; an unsigned record is ignored, never trusted). The signed body names
    the backup, so a record cannot be moved to another. A failed check is recorded only for a real attempt
    (`counts_as_failure`)."""
    body = json.loads(check.to_json())
    body["backup"] = name
    data = signing.canonical(body)
    try:
        signer = age_keys.signer(settings, env, create_default=False)
    except CuisineDbError:
        signer = None  # a restore host without the signing key: the record stays, unsigned and so not counted
    if signer is not None:
        repository.put_bytes(prefix(name) + which + SIGNATURE_SUFFIX, signer.sign(data))
    repository.put_bytes(prefix(name) + which, data)

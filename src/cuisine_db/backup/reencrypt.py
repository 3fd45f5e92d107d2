"""`backup reencrypt`: existing backups and archived WAL moved onto the keys an environment uses now (after
`backup rotate-keys`, backup/key_rotation.py).

Re-encryption creates before it swaps, one atomic object write at a time, so that a kill -9 at any moment leaves
every backup restorable with the old identity or the new one (both are kept until the operator retires the old):
- a backup: each object is decrypted and encrypted again to the new recipients (age only: its zstd frames are
  kept as they are) under a new name `<file>.kN.zst.age` beside the old; the new manifest (same sequence number,
  new objects, recipients and signer) is signed and its signature written as `manifest.next.sig`; manifest.json is
  replaced (it verifies against manifest.next.sig, catalog.py), then manifest.sig; then the old objects and
  manifest.next.sig go. A rerun finishes or tidies whatever a killed run left.
- a WAL file: its copy is stored under the sha256 of its plain content, which re-encryption does not change, so the
  new copy replaces the old in one write (local rename, S3 PUT) and its signed record stays true. A record signed
  by a key that no longer signs (the WAL signing key `rotate-keys` replaced, or an old backup key) is signed again
  with the key `wal push` signs with now: the new record is created, then the old removed.
- verification and test-restore records: the same body, signed again (one write of `<record>.sig`).
- archives and incident copies: backup/reencrypt_copies.py.
Only what is trusted now is re-signed: an untrusted or unsigned backup or WAL file is left as it is, and listed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from cuisine_db.backup import catalog, reencrypt_copies
from cuisine_db.backup.manifest import TEST_RESTORE, VERIFICATION, prefix
from cuisine_db.backup.reencrypt_keys import Change, Keys, clear_leftovers, keys_of, reencrypt_due, swap
from cuisine_db.backup.wal import fetch, wal_names
from cuisine_db.backup.wal import records as wal_records
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError
from cuisine_db.ops import confirmation
from cuisine_db.storage import LocalRepository, ObjectExists, Repository, open_repository, pipeline, signing
from cuisine_db.storage.pipeline import IntegrityError

__all__ = ["Change", "ReencryptReport", "reencrypt"]

LOCK = "reencrypt.lock"


@dataclass(frozen=True, slots=True)
class ReencryptReport:
    env: str
    repository: str
    dry_run: bool
    recipients: list[str]  # fingerprints of the keys everything is encrypted to afterwards
    signer: str  # the key id everything is signed with afterwards
    changes: list[Change] = field(default_factory=list)
    skipped: list[Change] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def backups(self) -> int:
        return sum(1 for change in self.changes if change.kind == "backup")

    @property
    def wal(self) -> int:
        return sum(1 for change in self.changes if change.kind == "wal")

    @property
    def archives(self) -> int:
        return len({change.subject for change in self.changes if change.kind == "archive"})

    @property
    def incident_copies(self) -> int:
        return len({change.subject for change in self.changes if change.kind == "incident"})


@contextlib.contextmanager
def _locked(settings: Settings, env: Environment) -> Iterator[None]:
    folder = settings.env_dir(env)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefusedError(f"another backup reencrypt of {env.name} is running", hint="let it finish") from None
        yield
    finally:
        os.close(fd)


def reencrypt(settings: Settings, env: Environment, *, dry_run: bool = False, yes: bool = False,
              ask: Callable[[str], str] | None = None, notify: Callable[[str], None] = lambda _: None
              ) -> ReencryptReport:
    """Every trusted backup, archived WAL file, archive and incident copy of `env` (in its repository) onto the
    recipients and signing key it uses now (the plan only with `dry_run`). On a protected environment the changes
    need `yes` or the environment's name typed in answer to `ask` (None: no terminal to ask: refused)."""
    started = time.monotonic()
    keys = keys_of(settings, env)
    repository = open_repository(settings, env)
    if not dry_run:
        confirmation.require(
            env, "re-encrypting the backups", yes=yes, ask=ask,
            question=f"Type {env.name!r} to re-encrypt and re-sign its backups and WAL",
            unasked=f"re-encrypting the backups of protected environment {env.name!r} needs confirmation and there "
                    "is no terminal to ask; nothing was changed",
            hint="look at the plan (dry-run=1), then add yes=1 to the make command (or --yes)",
            nothing="nothing was changed")
    changes: list[Change] = []
    skipped: list[Change] = []
    with _locked(settings, env):
        for entry in catalog.trusted_scan(settings, env, repository):
            _backup(repository, entry, keys, dry_run, changes, skipped, notify)
        _wal(repository, env, keys, dry_run, changes, skipped, notify)
        reencrypt_copies.archives(env, repository, keys, dry_run, changes, skipped, notify)
        reencrypt_copies.incidents(repository, keys, dry_run, changes, skipped, notify)
    return ReencryptReport(env.name, repository.url, dry_run, keys.fingerprints, keys.signer.key_id, changes,
                           skipped, round(time.monotonic() - started, 3))


def _backup(repository: Repository, entry: catalog.BackupEntry, keys: Keys, dry_run: bool, changes: list[Change],
            skipped: list[Change], notify: Callable[[str], None]) -> None:
    name = entry.name
    manifest = entry.manifest
    if manifest is None or entry.signer is None:
        if entry.problem is not None:
            skipped.append(Change("backup", name, f"left as it is: {entry.problem}"))
        return
    folder = prefix(name)
    stored = {info.key.rsplit("/", 1)[1] for info in entry.objects}
    reencrypted = reencrypt_due("backup", name, repository, folder, manifest, keys, dry_run, changes, stored, notify,
                                names_signer=True)
    if reencrypted is not None:
        manifest = reencrypted
    elif manifest.signer != keys.signer.key_id:
        changes.append(Change("backup", name, f"re-sign with key {keys.signer.key_id}"))
        if not dry_run:
            manifest = swap(repository, folder, replace(manifest, signer=keys.signer.key_id), keys.signer)
    for record in (VERIFICATION, TEST_RESTORE):
        _record(repository, folder + record, stored, keys, dry_run, changes)
    clear_leftovers(repository, folder, name, stored, manifest, keys, dry_run, changes)


def _record(repository: Repository, key: str, stored: set[str], keys: Keys, dry_run: bool,
            changes: list[Change]) -> None:
    """A verification or test-restore record signed by another trusted key: the same body, signed again. One not
    trusted at all is left alone (never laundered into a trusted one)."""
    record = key.rsplit("/", 1)[1]
    if record not in stored or record + catalog.SIGNATURE_SUFFIX not in stored:
        return
    data = repository.get_bytes(key)
    if len(data) > catalog.MAX_RECORD:
        return
    try:
        kid = keys.trust.verify(data, repository.get_bytes(key + catalog.SIGNATURE_SUFFIX))
    except signing.Untrusted:
        return
    if kid == keys.signer.key_id:
        return
    changes.append(Change("record", key, f"re-sign with key {keys.signer.key_id}"))
    if not dry_run:
        repository.put_bytes(key + catalog.SIGNATURE_SUFFIX, keys.signer.sign(data))


def _wal(repository: Repository, env: Environment, keys: Keys, dry_run: bool, changes: list[Change],
         skipped: list[Change], notify: Callable[[str], None]) -> None:
    copies, claims = fetch.copies_and_claims(repository, wal_names.env_prefix(env.name))
    for name in sorted(set(copies) | set(claims)):
        trusted: list[tuple[str, dict[str, Any], str]] = []
        for claim in claims.get(name, []):
            data = repository.get_bytes(claim)
            try:
                record = wal_records.read(data, keys.wal_trust, env.name, name)
            except signing.Untrusted:
                continue
            trusted.append((claim, json.loads(data.partition(b"\n")[0]), record.signer))
        digests = {body["sha256"] for _, body, _ in trusted}
        if len(digests) != 1:
            skipped.append(Change("wal", name, "left as it is: " + ("no record signed by a trusted key (archived "
                                                                    "before signatures, or not ours)" if not digests
                                                                    else "two signed records disagree")))
            continue
        digest = next(iter(digests))
        if digest not in copies.get(name, set()):
            continue  # a record whose copy was never stored (a push killed in between): nothing to move
        key = wal_names.key(env.name, name, digest)
        if _needs_reencrypt(repository, key, keys):
            changes.append(Change("wal", name, f"re-encrypt to {', '.join(keys.fingerprints)}"))
            if not dry_run:
                notify(f"re-encrypting {name}")
                _reencrypt_wal(repository, key, digest, keys)
        if not any(signer in keys.wal_signers for _, _, signer in trusted):
            changes.append(Change("claim", name, f"re-sign its record with key {keys.wal_signer.key_id}"))
            if not dry_run:
                _resign_claim(repository, env.name, name, trusted, keys)
        elif any(signer not in keys.wal_signers for _, _, signer in trusted):
            # A killed run's: the new record is there, the one signed with the retired key still beside it.
            changes.append(Change("leftover", name, "remove its record signed with a retired key"))
            if not dry_run:
                repository.delete([claim for claim, _, signer in trusted if signer not in keys.wal_signers])


def _needs_reencrypt(repository: Repository, key: str, keys: Keys) -> bool:
    """Whether the stored copy cannot be read with the new identities alone (age's header names no recipient)."""
    try:
        pipeline.fetch(repository, key, None, keys.new_identities, decompress=False)
    except IntegrityError as exc:
        if "no matching key" in exc.message:
            return True
        raise
    return False


def _reencrypt_wal(repository: Repository, key: str, digest: str, keys: Keys) -> None:
    import pyrage
    import zstandard

    frames = io.BytesIO()
    pipeline.fetch(repository, key, frames, keys.identities, compressed=True)
    plain = zstandard.ZstdDecompressor().decompressobj().decompress(frames.getvalue())
    if hashlib.sha256(plain).hexdigest() != digest:
        raise IntegrityError(key, "decrypts to content whose sha256 differs from its name: left as it is")
    sealed = bytes(pyrage.encrypt(frames.getvalue(), list(keys.recipients)))
    pipeline.store_sealed(repository, key, lambda: sealed, plain_size=len(plain))
    _give_back(repository, key)


def _resign_claim(repository: Repository, env: str, name: str, trusted: list[tuple[str, dict[str, Any], str]],
                  keys: Keys) -> None:
    _, body, _ = trusted[0]
    new_key = wal_records.claim_key(keys.wal_signer, env, name)
    data = wal_records.make(keys.wal_signer, env, name, body["sha256"], body["size"], body.get("system_identifier"))
    with contextlib.suppress(ObjectExists):
        repository.put_bytes(new_key, data, overwrite=False)  # already there: a rerun after a kill
    wal_records.read(repository.get_bytes(new_key), keys.wal_trust, env, name)  # ours, and it verifies
    _give_back(repository, new_key)
    repository.delete([claim for claim, _, signer in trusted if claim != new_key and signer not in keys.wal_signers])


def _give_back(repository: Repository, key: str) -> None:
    """A file root wrote into a local WAL area: owned like its folder (the server user fetches it as itself)."""
    if not isinstance(repository, LocalRepository) or os.geteuid() != 0:
        return
    path = repository.path(key)
    folder = path.parent.stat()
    if folder.st_uid != 0:
        os.chown(path, folder.st_uid, folder.st_gid, follow_symlinks=False)

"""What `backup reencrypt` moves everything onto, and the steps backups and archives share: objects encrypted again
beside the old ones (`<file>.kN.zst.age`) and a manifest swapped in through `manifest.next.sig`, one atomic write
at a time (backup/reencrypt.py, backup/reencrypt_copies.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cuisine_db.backup.manifest import MANIFEST, NEXT_SIGNATURE, SIGNATURE, Manifest, generation
from cuisine_db.backup.wal import access as wal_access
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, RefusedError, UsageError
from cuisine_db.storage import ObjectMissing, Repository, pipeline, signing
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.pipeline import IntegrityError


@dataclass(frozen=True, slots=True)
class Change:
    """One thing re-encryption changes (or would change, in a dry run), or leaves alone and why."""

    kind: str  # backup, record, wal, claim, archive, incident, leftover
    subject: str
    action: str


@dataclass
class Keys:
    recipients: list[Any]
    fingerprints: list[str]
    signer: signing.Signer
    trust: signing.Trust
    identities: list[Any]
    new_identities: list[Any]
    wal_signer: signing.Signer  # what `wal push` signs records with now: the environment's WAL key, rotated too
    wal_signers: set[str]  # records signed by these stay as they are
    wal_trust: signing.Trust  # what `wal fetch` trusts: the pinned keys and the environment's WAL signing keys
    spool: Path  # where an object's zstd frames wait between decryption and encryption (unnamed, 0600)

    def current(self, data: bytes, signature: bytes | None) -> bool:
        """Whether `signature` over `data` is the current signing key's."""
        try:
            signing.Trust({self.signer.key_id: signing.public_of_signer(self.signer)}).verify(data, signature)
        except signing.Untrusted:
            return False
        return True


def keys_of(settings: Settings, env: Environment) -> Keys:
    """The environment's current recipients and signing keys, refused when what would be signed is not trusted
    here, or when nothing written could be read back."""
    values = age_keys.recipients(settings, env)
    fingerprints = sorted(age_keys.fingerprint(value) for value in values)
    signer = age_keys.signer(settings, env, create_default=False)
    trust = age_keys.trust(settings, [env])
    if signer.key_id not in trust.keys:
        raise RefusedError(f"the signing key of {env.name} (key {signer.key_id}) is not among its trusted signers: "
                           "what reencrypt signs would not be trusted; nothing was changed",
                           hint="add its public key to backup.trusted_signers (backup rotate-keys printed it)")
    identities = age_keys.identities(settings, [env])
    new = [identity for identity in identities if age_keys.fingerprint(str(identity.to_public())) in fingerprints]
    if not new:
        raise UsageError(f"no age identity on this machine matches {env.name}'s recipients "
                         f"({', '.join(fingerprints)}): reencrypt reads back what it writes",
                         hint="set backup.identity_file to the new key's identity (backup rotate-keys said where)")
    access: wal_access.WalAccess | None
    try:
        access = wal_access.load(settings.config_path.resolve(), env.name)
    except CuisineDbError:  # an environment the file does not name (built-in defaults): the pinned keys alone
        access = None
    wal_trust = access.trust() if access is not None else trust
    # `wal push` signs with the environment's own WAL key when there is one (wal enable made it), else with the
    # backup signing key: re-signed records are made the same way.
    wal_key = settings.env_dir(env) / wal_access.WAL_SIGNING_KEY
    wal_signer = signing.signer_from_file(wal_key) if wal_key.exists() else signer
    if wal_signer.key_id not in wal_trust.keys:
        raise RefusedError(f"the WAL signing key of {env.name} (key {wal_signer.key_id}) is not trusted for its WAL "
                           "records: what reencrypt signs would not be fetched; nothing was changed",
                           hint=f"its public key belongs in {settings.env_dir(env) / wal_access.WAL_SIGNING_PUBLIC} "
                                "(backup rotate-keys writes it there)")
    return Keys(age_keys.parse_recipients(values), fingerprints, signer, trust, identities, new, wal_signer,
                {signer.key_id, wal_signer.key_id}, wal_trust, settings.state_dir)


def reencrypt_objects(repository: Repository, folder: str, manifest: Manifest, keys: Keys) -> Manifest:
    """Each object of `manifest` decrypted and encrypted again to the new recipients under its next generation's
    name, beside the old; the manifest that names them (not yet stored)."""
    number = max((generation(item.name, item.file) or 0) for item in manifest.objects) + 1 if manifest.objects else 1
    renamed = []
    for item in manifest.objects:
        new_name = f"{item.file}.k{number}.zst.age"
        # The zstd frames spool through an unnamed 0600 file in the state folder (they are the backup's data).
        with tempfile.TemporaryFile(prefix=".reencrypt-", dir=keys.spool) as frames:
            fetched = pipeline.fetch(repository, folder + item.name, frames, keys.identities, expect_size=item.size,
                                     expect_sha256=item.sha256, compressed=True, expect_plain_size=item.plain_size)
            if not item.fits(fetched.plain_size):
                raise IntegrityError(folder + item.name, item.plain_mismatch(fetched.plain_size))
            frames.seek(0)
            written = pipeline.store(repository, folder + new_name, frames, keys.recipients, compress=False)
        renamed.append(replace(item, name=new_name, size=written.size, sha256=written.sha256))
    return replace(manifest, objects=tuple(renamed), encryption={**manifest.encryption,
                                                                  "recipients": keys.fingerprints})


def reencrypt_due(kind: str, name: str, repository: Repository, folder: str, manifest: Manifest, keys: Keys,
                  dry_run: bool, changes: list[Change], stored: set[str], notify: Callable[[str], None], *,
                  names_signer: bool) -> Manifest | None:
    """A backup's or archive's objects onto the current recipients when the manifest names others: the change
    listed, and (unless `dry_run`) the objects encrypted again and the manifest swapped in, its new objects added to
    `stored`. The manifest now in place (the old one on a dry run); None when nothing was due. `names_signer`: the
    manifest records its signing key (a backup's does)."""
    if sorted(manifest.encryption.get("recipients", [])) == keys.fingerprints:
        return None
    changes.append(Change(kind, name, f"re-encrypt {len(manifest.objects)} object(s) to "
                                     f"{', '.join(keys.fingerprints)} and re-sign"))
    if dry_run:
        return manifest
    notify(f"re-encrypting {name}")
    new = reencrypt_objects(repository, folder, manifest, keys)
    if names_signer:
        new = replace(new, signer=keys.signer.key_id)
    new = swap(repository, folder, new, keys.signer, old=manifest)
    stored |= {item.name for item in new.objects}
    return new


def swap(repository: Repository, folder: str, new: Manifest, signer: signing.Signer,
         old: Manifest | None = None) -> Manifest:
    """The new manifest in place of the old, each step one atomic write: its signature beside (next.sig), the
    manifest, its signature in place; then what only the old one named."""
    body = new.to_json()
    signature = signer.sign(body)
    repository.put_bytes(folder + NEXT_SIGNATURE, signature)
    repository.put_bytes(folder + MANIFEST, body)
    repository.put_bytes(folder + SIGNATURE, signature)
    kept = {item.name for item in new.objects}
    gone = [folder + item.name for item in (old.objects if old else ()) if item.name not in kept]
    repository.delete([*gone, folder + NEXT_SIGNATURE])
    return Manifest.from_json(body, folder + MANIFEST)


def finish_swap(repository: Repository, folder: str, trust: signing.Trust, dry_run: bool) -> bool:
    """A swap killed after manifest.json was replaced: manifest.sig still signs the old one and only
    manifest.next.sig the manifest there now. manifest.sig gets that signature before manifest.next.sig may go;
    True when it may go."""
    body = repository.get_bytes(folder + MANIFEST)
    for signature in (SIGNATURE, NEXT_SIGNATURE):
        try:
            found = repository.get_bytes(folder + signature)
            trust.verify(body, found)
        except (signing.Untrusted, ObjectMissing):
            continue
        if signature == NEXT_SIGNATURE and not dry_run:
            repository.put_bytes(folder + SIGNATURE, found)
        return True
    return False


def leftovers(folder: str, stored: set[str], manifest: Manifest) -> list[str]:
    """Objects of an older (or unfinished newer) generation that the manifest no longer names: a killed run's."""
    current = {item.name for item in manifest.objects}
    files = {item.file for item in manifest.objects}
    return sorted(folder + name for name in stored if name not in current
                  and any(generation(name, file) is not None for file in files))


def clear_leftovers(repository: Repository, folder: str, name: str, stored: set[str], manifest: Manifest,
                    keys: Keys, dry_run: bool, changes: list[Change]) -> None:
    """What a killed run left in one folder: objects of another generation, and manifest.next.sig once its
    signature is in place as manifest.sig. Listed as one change unless the folder has one already."""
    gone = leftovers(folder, stored, manifest)
    if NEXT_SIGNATURE in stored and finish_swap(repository, folder, keys.trust, dry_run):
        gone.append(folder + NEXT_SIGNATURE)
    if gone:
        if not any(change.subject == name for change in changes):
            changes.append(Change("leftover", name, f"remove {len(gone)} object(s) an interrupted run left"))
        if not dry_run:
            repository.delete(gone)

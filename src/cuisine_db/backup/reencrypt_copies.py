"""`backup reencrypt` for what lives beside the backups: archives (archive/catalog.py) and incident copies
(ops/incident_copy.py), moved onto the environment's current keys the way backups are, one atomic write at a time.

- an archive: its objects encrypted again to `<file>.kN.zst.age` beside the old, its manifest swapped in through
  `manifest.next.sig` (the archive catalog accepts either signature), then the old objects go; an archive already
  encrypted to the current keys but signed by another trusted key gets its `manifest.sig` written again. Its
  records (intent, verification, deletion, restored) keep their bodies and are signed again.
- an incident copy: `<file>.age` replaced in one write by the same plain bytes encrypted to the new recipients (its
  signature, over the plain bytes, stays true), then `<file>.sig` signed with the current key.
Only what verifies against a pinned key now is touched; anything else is left as it is and listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cuisine_db.archive import catalog as archives_catalog
from cuisine_db.backup.manifest import MANIFEST, NEXT_SIGNATURE, SIGNATURE, VERIFICATION, Manifest
from cuisine_db.backup.reencrypt_keys import Change, Keys, clear_leftovers, reencrypt_due
from cuisine_db.config import Environment
from cuisine_db.errors import CuisineDbError
from cuisine_db.ops import incident_copy
from cuisine_db.storage import Repository, signing

RECORDS = (archives_catalog.INTENT, VERIFICATION, archives_catalog.DELETION, archives_catalog.RESTORED)


def archives(env: Environment, repository: Repository, keys: Keys, dry_run: bool, changes: list[Change],
             skipped: list[Change], notify: Callable[[str], None]) -> None:
    """Every trusted archive of `env` onto the current recipients and signing key."""
    for entry in archives_catalog.scan(repository, trust=keys.trust, env=env.name):
        if entry.manifest is None:
            if entry.problem is not None:
                skipped.append(Change("archive", entry.name, f"left as it is: {entry.problem}"))
            continue
        _archive(repository, entry, entry.manifest, keys, dry_run, changes, notify)


def _archive(repository: Repository, entry: archives_catalog.ArchiveEntry, manifest: Manifest, keys: Keys,
             dry_run: bool, changes: list[Change], notify: Callable[[str], None]) -> None:
    name = entry.name
    folder = archives_catalog.prefix(name)
    stored = {info.key.rsplit("/", 1)[1] for info in entry.objects}
    body = repository.get_bytes(folder + MANIFEST)
    reencrypted = reencrypt_due("archive", name, repository, folder, manifest, keys, dry_run, changes, stored,
                                notify, names_signer=False)
    if reencrypted is not None:
        manifest = reencrypted
    elif not keys.current(body, _signature(repository, folder + SIGNATURE)):
        if NEXT_SIGNATURE in stored and keys.current(body, _signature(repository, folder + NEXT_SIGNATURE)):
            pass  # a killed swap's: clear_leftovers below puts that signature in place
        else:
            changes.append(Change("archive", name, f"re-sign with key {keys.signer.key_id}"))
            if not dry_run:
                repository.put_bytes(folder + SIGNATURE, keys.signer.sign(body))
    for record in RECORDS:
        _record(repository, folder, record, stored, keys, dry_run, changes)
    clear_leftovers(repository, folder, name, stored, manifest, keys, dry_run, changes)


def _signature(repository: Repository, key: str) -> bytes | None:
    from cuisine_db.storage import ObjectMissing

    try:
        return repository.get_bytes(key)
    except ObjectMissing:
        return None


def _record(repository: Repository, folder: str, record: str, stored: set[str], keys: Keys, dry_run: bool,
            changes: list[Change]) -> None:
    """An archive's record signed by another trusted key: the same body, signed again. One not trusted at all is
    left alone (never laundered into a trusted one)."""
    signature_file = archives_catalog.signature_of(record)
    if record not in stored or signature_file not in stored:
        return
    data = repository.get_bytes(folder + record)
    if len(data) > archives_catalog.MAX_FILE:
        return
    signature = _signature(repository, folder + signature_file)
    try:
        keys.trust.verify(data, signature)
    except signing.Untrusted:
        return
    if keys.current(data, signature):
        return
    changes.append(Change("record", folder + record, f"re-sign with key {keys.signer.key_id}"))
    if not dry_run:
        repository.put_bytes(folder + signature_file, keys.signer.sign(data))


def incidents(repository: Repository, keys: Keys, dry_run: bool, changes: list[Change], skipped: list[Change],
              notify: Callable[[str], None]) -> None:
    """Every incident copy in the repository onto the current recipients and signing key."""
    copies = sorted(info.key.removesuffix(incident_copy.ENCRYPTED) for info in repository.list(incident_copy.ROOT)
                    if info.key.endswith(incident_copy.ENCRYPTED))
    for key in copies:
        try:
            plain, _ = incident_copy.open_copy(repository, key, keys.identities, keys.trust)
        except CuisineDbError as exc:
            skipped.append(Change("incident", key, f"left as it is: {exc.message}"))
            continue
        if not _readable(repository, key, keys.new_identities):
            changes.append(Change("incident", key, f"re-encrypt to {', '.join(keys.fingerprints)}"))
            if not dry_run:
                import pyrage

                notify(f"re-encrypting {key}")
                repository.put_bytes(key + incident_copy.ENCRYPTED, bytes(pyrage.encrypt(plain, list(keys.recipients))))
        if not keys.current(plain, _signature(repository, key + incident_copy.SIGNED)):
            changes.append(Change("incident", key, f"re-sign with key {keys.signer.key_id}"))
            if not dry_run:
                repository.put_bytes(key + incident_copy.SIGNED, keys.signer.sign(plain))


def _readable(repository: Repository, key: str, identities: list[Any]) -> bool:
    import pyrage

    try:
        pyrage.decrypt(repository.get_bytes(key + incident_copy.ENCRYPTED), list(identities))
    except Exception:  # pyrage.DecryptError: none of the new identities matches
        return False
    return True

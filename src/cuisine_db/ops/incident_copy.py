"""Copies of an incident in the backup repositories, so that it survives the host that filed it.

An incident, its journal lines and its report are written under `incidents/<id>/` in the repository of every
environment it covers (each repository once). They hold no secret (the journal removes them before it writes),
but they describe the outage to whoever can read the bucket: each file is age-encrypted to the environment's
recipients (`<file>.age`) and signed like a backup's manifest (`<file>.sig`, raw Ed25519 over the plain bytes),
so whoever rebuilds the host reads them with `age -d -i backup.key` and checks them with `openssl pkeyutl
-verify` (docs/break-glass.md), and nobody with write access can plant a false history. A copy that fails is
reported, never raised: the repository may well be part of the outage, and the incident is open all the same.
`read_copy` reads a copy back the way a rebuilt host would: decrypted, and used only when its signature verifies
(`backup reencrypt` moves copies onto new keys the same way, backup/reencrypt_copies.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, FailedError, RefusedError, UsageError
from cuisine_db.ops import incidents
from cuisine_db.ops.incident_record import validate_id
from cuisine_db.ops.incidents import Incident

if TYPE_CHECKING:
    from cuisine_db.storage import Repository, signing

ROOT = "incidents/"
ENCRYPTED = ".age"
SIGNED = ".sig"
MAX_COPY = 64 << 20  # larger than any incident's export: never read whole into memory


class UntrustedCopy(RefusedError):
    """An incident copy whose signature does not verify against a pinned key (or that has none): never used."""


def open_copy(repository: Repository, key: str, identities: Sequence[Any], trust: signing.Trust) -> tuple[bytes, str]:
    """The plain bytes of the copy `key` (stored as `key.age`, signed in `key.sig`) and the id of the pinned key that
    signed them; UntrustedCopy (exit 4) naming it when the signature does not verify, FailedError when it cannot
    be decrypted."""
    import pyrage

    from cuisine_db.storage import ObjectMissing, signing

    try:
        sealed = repository.get_bytes(key + ENCRYPTED)
    except ObjectMissing:
        raise UsageError(f"there is no incident copy {key + ENCRYPTED} in {repository.url}") from None
    if len(sealed) > MAX_COPY:
        raise UntrustedCopy(f"{key + ENCRYPTED} is larger than any copy this tool writes: not used")
    try:
        signature: bytes | None = repository.get_bytes(key + SIGNED)
    except ObjectMissing:
        signature = None
    try:
        plain = bytes(pyrage.decrypt(sealed, list(identities)))
    except Exception:  # pyrage.DecryptError: no identity here matches, or the bytes are not age's
        raise FailedError(f"{key + ENCRYPTED} cannot be decrypted with the identities on this machine",
                          hint="its key may have been retired before backup reencrypt ran") from None
    try:
        kid = trust.verify(plain, signature)
    except signing.Untrusted as exc:
        raise UntrustedCopy(f"{key + ENCRYPTED} is untrusted ({exc.why}): not used",
                            hint="docs/security.md: someone may have written to the repository") from None
    return plain, kid


def read_copy(settings: Settings, env: Environment, incident_id: str) -> dict[str, bytes]:
    """Every file of an incident's copy in env's repository (file name -> plain bytes), each decrypted with the
    identities on this machine and used only when its signature verifies against env's pinned keys."""
    from cuisine_db.storage import keys, open_repository

    folder = f"{ROOT}{validate_id(incident_id)}/"
    repository = open_repository(settings, env)
    names = sorted(info.key.removesuffix(ENCRYPTED) for info in repository.list(folder)
                   if info.key.endswith(ENCRYPTED))
    if not names:
        raise UsageError(f"there is no copy of incident {incident_id} in {repository.url}")
    identities = keys.identities(settings, [env])
    trust = keys.trust(settings, [env])
    return {name.removeprefix(folder): open_copy(repository, name, identities, trust)[0] for name in names}


@dataclass(frozen=True, slots=True)
class Copy:
    """One repository the incident was (or could not be) copied to."""

    repository: str  # its URL (never holds a credential: S3 keys are named by variable)
    copied: bool
    detail: str  # the keys written, or why not


def _repositories(settings: Settings, incident: Incident) -> tuple[dict[str, str], list[Copy]]:
    """The environments' repository URLs, each once (URL -> an environment using it), and those that cannot
    even be named (a bad repository setting)."""
    from cuisine_db.storage import repository_url

    names = [incident.env] if incident.env is not None else sorted(settings.environments)
    urls: dict[str, str] = {}
    broken = []
    for name in names:
        try:
            urls.setdefault(repository_url(settings, settings.env(name)), name)
        except CuisineDbError as exc:
            broken.append(Copy(f"(environment {name})", False, exc.message))
    return urls, broken


def copy_incident(settings: Settings, incident_id: str) -> list[Copy]:
    """Write the incident's export to every repository it belongs in; say for each how it went."""
    from cuisine_db.storage import open_repository

    incident = incidents.get(settings, incident_id)
    blobs = incidents.export(settings, incident.id)
    urls, results = _repositories(settings, incident)
    for url, env_name in urls.items():
        try:
            import pyrage

            from cuisine_db.storage import keys

            env = settings.env(env_name)
            recipients = keys.parse_recipients(keys.recipients(settings, env))
            signer = keys.signer(settings, env)
            repository = open_repository(settings, env)
            for key, data in blobs.items():
                repository.put_bytes(key + SIGNED, signer.sign(data))
                repository.put_bytes(key + ENCRYPTED, pyrage.encrypt(data, recipients))
        except CuisineDbError as exc:
            results.append(Copy(url, False, exc.message))
        except OSError as exc:  # a local repository on a full or read-only disk
            results.append(Copy(url, False, str(exc)))
        else:
            results.append(Copy(url, True, f"incidents/{incident.id}/ ({len(blobs)} files)"))
    return results

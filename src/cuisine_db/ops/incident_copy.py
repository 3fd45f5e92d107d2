"""Copies of an incident in the backup repositories, so that it survives the host that filed it.

An incident, its journal lines and its report are written under `incidents/<id>/` in the repository of every
environment it covers (each repository once). They hold no secret (the journal removes them before it writes),
but they describe the outage to whoever can read the bucket: each file is age-encrypted to the environment's
recipients (`<file>.age`) and signed like a backup's manifest (`<file>.sig`, raw Ed25519 over the plain bytes),
so whoever rebuilds the host reads them with `age -d -i backup.key` and checks them with `openssl pkeyutl
-verify` (docs/break-glass.md), and nobody with write access can plant a false history. A copy that fails is
reported, never raised: the repository may well be part of the outage, and the incident is open all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from cuisine_db.config import Settings
from cuisine_db.errors import CuisineDbError
from cuisine_db.ops import incidents
from cuisine_db.ops.incidents import Incident


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
                repository.put_bytes(key + ".sig", signer.sign(data))
                repository.put_bytes(key + ".age", pyrage.encrypt(data, recipients))
        except CuisineDbError as exc:
            results.append(Copy(url, False, exc.message))
        except OSError as exc:  # a local repository on a full or read-only disk
            results.append(Copy(url, False, str(exc)))
        else:
            results.append(Copy(url, True, f"incidents/{incident.id}/ ({len(blobs)} files)"))
    return results

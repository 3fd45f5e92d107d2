"""Checking an archive end to end: every object present with the manifest's size and sha256, decrypted with an
identity available here, a complete zstd stream of the recorded plain size, and the recorded row counts. An
archive's rows are deleted only after this passes, on every run that deletes for it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cuisine_db.archive import catalog
from cuisine_db.backup.catalog import Check
from cuisine_db.backup.manifest import VERIFICATION, Manifest
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError
from cuisine_db.storage import Repository
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.pipeline import IntegrityError, fetch
from cuisine_db.whoami import who


def check_objects(repository: Repository, manifest: Manifest, identities: Sequence[Any]) -> Check:
    """Read every object back through age and zstd against the manifest; the problems name the objects."""
    started = time.monotonic()
    folder = catalog.prefix(manifest.name)
    problems: list[str] = []
    checked = size = 0
    for item in manifest.objects:
        key = folder + item.name
        try:
            fetched = fetch(repository, key, None, identities, expect_size=item.size, expect_sha256=item.sha256,
                            count_rows=item.rows is not None, expect_plain_size=item.plain_size)
        except IntegrityError as exc:
            problems.append(f"{exc.key}: {exc.problem}")
            continue
        except CuisineDbError as exc:
            problems.append(f"{key}: {exc.message}")
            continue
        checked += 1
        size += item.size
        if not item.fits(fetched.plain_size):
            problems.append(f"{key}: {item.plain_mismatch(fetched.plain_size)}")
        elif item.rows is not None and fetched.rows != item.rows:
            problems.append(f"{key}: holds {fetched.rows} rows, the manifest says {item.rows}")
    return Check(at=datetime.now(UTC), ok=not problems, by=who(), seconds=round(time.monotonic() - started, 3),
                 problems=problems, details={"objects": checked, "bytes": size})


@dataclass(frozen=True, slots=True)
class VerifyReport:
    name: str
    repository: str
    ok: bool
    table: str | None
    rows: int | None
    objects: int
    bytes: int
    seconds: float
    problems: list[str] = field(default_factory=list)


def verify(settings: Settings, env: Environment, reference: str) -> VerifyReport:
    """Check an archive (by name, or `latest` of env) and record the result next to it."""
    found = catalog.find(settings, env, reference)
    identities = age_keys.identities(settings, [env] + ([found.source_env] if found.source_env else []))
    check = check_objects(found.repository, found.manifest, identities)
    catalog.record(settings, found.source_env or env, found.repository, found.manifest.name, VERIFICATION,
                   check.to_json())
    return VerifyReport(found.manifest.name, found.repository.url, check.ok, found.entry.table, found.entry.rows,
                        int(check.details["objects"]), int(check.details["bytes"]), check.seconds, check.problems)

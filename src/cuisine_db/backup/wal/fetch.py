"""`wal fetch %f %p`: the restore_command, with prefetching.

Only the copy our signed record names is taken (records.py): the record's signature is checked against the
pinned keys before its hash is used. A name that has objects but no record we trust, followed by files we did
archive, is a hole someone filled: it exits 254, so recovery stops with an error instead of replaying it or
ending quietly before it. Followed by nothing of ours, it lies beyond the archive's end: exit 1, the archive
ends there (never replayed, and a planted object cannot block every restore).

Exit codes follow PostgreSQL's contract: 0 when the file is in place; 1 only when the archive certainly does
not hold it (the end of the archive, or a history file that was never written); any other failure — storage
unreachable after retries, a stored copy that does not decrypt or hash to its name, two different copies, a
configuration the server's user cannot read — exits 254, which PostgreSQL treats like a signal: recovery
stops with an error instead of ending early at a hole and opening the database without the rest.

When PostgreSQL asks for a segment that is not prefetched yet, the call fetches it together with the next
`prefetch - 1` archived segments of the same timeline, on `fetch_threads` threads, into the spool folder; the
following calls only rename their file into place.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cuisine_db.backup.wal import wal_names
from cuisine_db.backup.wal.access import WalAccess
from cuisine_db.errors import FailedError
from cuisine_db.storage.base import ObjectMissing, Repository, RepositoryError

PREFETCH_FOLDER = "prefetch"
RETRIES = 3
T = TypeVar("T")


class NotArchived(Exception):
    """The archive does not hold this file: PostgreSQL's "no more WAL here"."""


class Duplicate(FailedError):
    """Two different copies under one name: which one is right is a person's call, never ours."""


class Forged(FailedError):
    """Objects under a WAL file's name without a record signed by a trusted key: never replayed."""


def retrying(action: Callable[[], T], *, attempts: int = RETRIES, pause: float = 1.0) -> T:
    """Storage errors are retried with a growing pause; a missing object is an answer, not an error."""
    for attempt in range(attempts):
        try:
            return action()
        except ObjectMissing:
            raise
        except (RepositoryError, OSError):
            if attempt == attempts - 1:
                raise
            time.sleep(pause * (2 ** attempt))
    raise AssertionError("unreachable")


class _Hashing:
    """Writes the plain bytes to a file and hashes them on the way."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.handle.write(data)
        self.hash.update(data)
        return len(data)


def listing(repository: Repository, env: str, folder: str) -> dict[str, set[str]]:
    """Every file archived in one folder, with the hashes of its stored copies."""
    return signed_listing(repository, env, folder)[0]


def signed_listing(repository: Repository, env: str, folder: str) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """Every file archived in one folder with the hashes of its stored copies, and the record keys of each."""
    from cuisine_db.backup.wal import records

    found: dict[str, set[str]] = {}
    claims: dict[str, list[str]] = {}
    for info in repository.list(f"{wal_names.env_prefix(env)}{folder}/"):
        parsed = wal_names.parse_key(info.key)
        if parsed is not None:
            found.setdefault(parsed.name, set()).add(parsed.sha256)
            continue
        claimed = records.is_claim(info.key)
        if claimed is not None:
            claims.setdefault(claimed, []).append(info.key)
    return found, claims


def ours(access: WalAccess, repository: Repository, trust: Any, name: str, claims: list[str],
         copies: set[str], later_ours: Callable[[], bool] = lambda: True) -> str | None:
    """The hash our trusted record of `name` names, if it is stored; None when nothing of ours is archived.

    Copies under the name that no trusted record names are never taken. Whether they end the archive or stop
    recovery depends on what follows: when a later file has a record of ours (`later_ours`), this name is a hole
    someone filled (Forged: 254, recovery stops loudly rather than end early at it); when nothing of ours
    follows, they are planted beyond the archive's end and the archive simply ends here (None: exit 1), so a
    planted object cannot hold every restore hostage either. Duplicate when our own records disagree."""
    from cuisine_db.backup.wal import records
    from cuisine_db.storage import signing

    trusted: set[str] = set()
    why = []
    for key in claims:
        try:
            data = retrying(functools.partial(repository.get_bytes, key))
            trusted.add(records.read(data, trust, access.env, name).sha256)
        except signing.Untrusted as exc:
            why.append(exc.why)
        except ObjectMissing:
            continue
    if len(trusted) > 1:
        raise Duplicate(f"{name} has two signed records with different content; recovery stops here rather than "
                        "guess", hint="see cuisine-db wal status")
    if trusted:
        digest = next(iter(trusted))
        if digest in copies:
            return digest
        if not copies:
            return None  # our record, and its copy not stored yet (a push killed in between): not archived
        raise Forged(f"REFUSED: {name}'s copy named by our record is gone and only copies no trusted record names "
                     "are there: recovery stops here rather than replay them",
                     hint="someone may have written to the repository (docs/security.md); see cuisine-db wal status")
    if (copies or claims) and later_ours():
        reason = f" ({why[0]})" if why else ""
        raise Forged(f"REFUSED: {name} is in the archive only as copies no trusted record names{reason}: "
                     "recovery stops here rather than replay them",
                     hint="someone may have written to the repository (docs/security.md); see cuisine-db wal status")
    return None


def download(access: WalAccess, repository: Repository, identities: list[Any], name: str, sha256: str,
             destination: Path) -> None:
    """Decrypt and decompress one archived file into place (via a temporary name), checking its hash."""
    from cuisine_db.storage.pipeline import fetch as fetch_object

    temp = destination.with_name(f".{destination.name}.{os.getpid()}.part")
    try:
        with temp.open("wb") as handle:
            sink = _Hashing(handle)
            retrying(lambda: fetch_object(repository, wal_names.key(access.env, name, sha256), sink, identities))
        if sink.hash.hexdigest() != sha256:
            raise FailedError(f"{name}: the archived copy decrypts to content whose sha256 differs from its name")
        os.replace(temp, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _deliver_cached(cached: Path, destination: Path) -> bool:
    try:
        os.replace(cached, destination)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        shutil.copyfile(cached, destination)  # another filesystem
        cached.unlink()
        return True


def _next_folder(folder: str) -> str:
    return f"{folder[:8]}{int(folder[8:16], 16) + 1:08X}"


def fetch(access: WalAccess, name: str, destination: Path) -> str:
    """Put `name` at `destination`; 'prefetched' or 'fetched', or NotArchived / an error."""
    wal_names.check(name)
    cache = access.spool / PREFETCH_FOLDER
    if wal_names.is_segment(name) and _deliver_cached(cache / name, destination):
        _forget_older(cache, name)
        return "prefetched"
    repository = access.repository()
    folder = wal_names.folder(name)
    archived, claims = retrying(lambda: signed_listing(repository, access.env, folder))
    trust = access.trust()

    def later_ours() -> bool:
        """Whether one of the next few files after `name` (this folder, else the next one) has a trusted record."""
        from cuisine_db.backup.wal import records
        from cuisine_db.storage import signing

        found = claims
        after = sorted(n for n in found if n > name)[:3]
        if not after and wal_names.is_segment(name):
            found = retrying(lambda: signed_listing(repository, access.env, _next_folder(folder)))[1]
            after = sorted(found)[:3]
        for later in after:
            for key in found[later]:
                try:
                    records.read(retrying(functools.partial(repository.get_bytes, key)), trust, access.env, later)
                    return True
                except (signing.Untrusted, ObjectMissing):
                    continue
        return False

    digest = ours(access, repository, trust, name, claims.get(name, []), archived.get(name, set()), later_ours)
    if digest is None:
        raise NotArchived(name)
    copies = {digest}
    identities = access.identities()
    ahead: list[tuple[str, set[str], list[str]]] = []
    following: dict[str, set[str]] = {}
    following_claims: dict[str, list[str]] = {}
    if wal_names.is_segment(name) and access.prefetch > 1:
        later = sorted(n for n in archived if wal_names.is_segment(n) and n > name)
        if len(later) < access.prefetch - 1:
            following, following_claims = retrying(lambda: signed_listing(repository, access.env,
                                                                          _next_folder(folder)))
            later += sorted(n for n in following if wal_names.is_segment(n))
        for candidate in later[: access.prefetch - 1]:
            hashes = archived.get(candidate) or following.get(candidate, set())
            records_of = claims.get(candidate) or following_claims.get(candidate, [])
            if records_of and not (cache / candidate).exists():
                ahead.append((candidate, hashes, records_of))
    if not ahead:
        download(access, repository, identities, name, next(iter(copies)), destination)
        return "fetched"
    with contextlib.suppress(OSError):
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    with ThreadPoolExecutor(max_workers=access.fetch_threads, thread_name_prefix="wal-fetch") as pool:
        wanted = pool.submit(download, access, repository, identities, name, next(iter(copies)), destination)
        for candidate, hashes, records_of in ahead:
            pool.submit(_prefetch, access, repository, identities, trust, candidate, hashes, records_of,
                        cache / candidate)
        wanted.result()
    _forget_older(cache, name)
    return "fetched"


def _prefetch(access: WalAccess, repository: Repository, identities: list[Any], trust: Any, name: str,
              hashes: set[str], claims: list[str], target: Path) -> None:
    # A segment that cannot be prefetched is fetched again when PostgreSQL asks for it, and fails loudly then.
    with contextlib.suppress(Exception):
        digest = ours(access, repository, trust, name, claims, hashes)
        if digest is not None:
            download(access, repository, identities, name, digest, target)


def _forget_older(cache: Path, name: str) -> None:
    with contextlib.suppress(OSError):
        for entry in os.listdir(cache):
            if wal_names.is_segment(entry) and entry < name:
                with contextlib.suppress(OSError):
                    (cache / entry).unlink()


def clear_prefetched(spool: Path) -> None:
    """Before a new recovery: nothing prefetched for an earlier one may be delivered."""
    shutil.rmtree(spool / PREFETCH_FOLDER, ignore_errors=True)

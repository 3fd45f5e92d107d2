"""`wal fetch %f %p`: the restore_command, with prefetching.

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
import hashlib
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cuisine_db.backup.wal import names
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
    found: dict[str, set[str]] = {}
    for info in repository.list(f"{names.env_prefix(env)}{folder}/"):
        parsed = names.parse_key(info.key)
        if parsed is not None:
            found.setdefault(parsed.name, set()).add(parsed.sha256)
    return found


def download(access: WalAccess, repository: Repository, identities: list[Any], name: str, sha256: str,
             destination: Path) -> None:
    """Decrypt and decompress one archived file into place (via a temporary name), checking its hash."""
    from cuisine_db.storage.pipeline import fetch as fetch_object

    temp = destination.with_name(f".{destination.name}.{os.getpid()}.part")
    try:
        with temp.open("wb") as handle:
            sink = _Hashing(handle)
            retrying(lambda: fetch_object(repository, names.key(access.env, name, sha256), sink, identities))
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
    names.check(name)
    cache = access.spool / PREFETCH_FOLDER
    if names.is_segment(name) and _deliver_cached(cache / name, destination):
        _forget_older(cache, name)
        return "prefetched"
    repository = access.repository()
    folder = names.folder(name)
    archived = retrying(lambda: listing(repository, access.env, folder))
    copies = archived.get(name, set())
    if not copies:
        raise NotArchived(name)
    if len(copies) > 1:
        raise Duplicate(f"{name} is archived twice with different content ({', '.join(sorted(h[:16] for h in copies))})"
                        "; recovery stops here rather than guess", hint="see cuisine-db wal status")
    identities = access.identities()
    ahead: list[tuple[str, str]] = []
    following: dict[str, set[str]] = {}
    if names.is_segment(name) and access.prefetch > 1:
        later = sorted(n for n in archived if names.is_segment(n) and n > name)
        if len(later) < access.prefetch - 1:
            following = retrying(lambda: listing(repository, access.env, _next_folder(folder)))
            later += sorted(n for n in following if names.is_segment(n))
        for candidate in later[: access.prefetch - 1]:
            hashes = archived.get(candidate) or following.get(candidate, set())
            if len(hashes) == 1 and not (cache / candidate).exists():
                ahead.append((candidate, next(iter(hashes))))
    if not ahead:
        download(access, repository, identities, name, next(iter(copies)), destination)
        return "fetched"
    with contextlib.suppress(OSError):
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    with ThreadPoolExecutor(max_workers=access.fetch_threads, thread_name_prefix="wal-fetch") as pool:
        wanted = pool.submit(download, access, repository, identities, name, next(iter(copies)), destination)
        for candidate, digest in ahead:
            pool.submit(_prefetch, access, repository, identities, candidate, digest, cache / candidate)
        wanted.result()
    _forget_older(cache, name)
    return "fetched"


def _prefetch(access: WalAccess, repository: Repository, identities: list[Any], name: str, digest: str,
              target: Path) -> None:
    # A segment that cannot be prefetched is fetched again when PostgreSQL asks for it, and fails loudly then.
    with contextlib.suppress(Exception):
        download(access, repository, identities, name, digest, target)


def _forget_older(cache: Path, name: str) -> None:
    with contextlib.suppress(OSError):
        for entry in os.listdir(cache):
            if names.is_segment(entry) and entry < name:
                with contextlib.suppress(OSError):
                    (cache / entry).unlink()


def clear_prefetched(spool: Path) -> None:
    """Before a new recovery: nothing prefetched for an earlier one may be delivered."""
    shutil.rmtree(spool / PREFETCH_FOLDER, ignore_errors=True)

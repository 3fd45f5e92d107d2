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

Segments come from the fetch-ahead spool (spool.py) when the prefetcher has them: the restore command's shell then
only renames the file into place without starting Python (enable._spooled_first; served.py does the same where the
shell did not). A segment not there yet is fetched here, and the prefetcher started if none is alive. Timeline
history files the prefetcher verified are copied out of the spool (recovery asks for some twice); one the spool
lacks is always asked of the archive, so "absent" (exit 1) still means only that the archive lacks it: promotion
picks its new timeline on that answer.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cuisine_db.backup.wal import wal_names
from cuisine_db.backup.wal.access import WalAccess
from cuisine_db.errors import FailedError
from cuisine_db.storage.base import ObjectMissing, Repository, RepositoryError
from cuisine_db.waiting import retry

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
    return retry(action, on=(RepositoryError, OSError), giving_up=(ObjectMissing,), attempts=attempts, pause=pause)


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
    return copies_and_claims(repository, f"{wal_names.env_prefix(env)}{folder}/")


def copies_and_claims(repository: Repository, under: str) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """Every file archived below a key prefix with the hashes of its stored copies, and the record keys of each."""
    from cuisine_db.backup.wal import records

    found: dict[str, set[str]] = {}
    claims: dict[str, list[str]] = {}
    for info in repository.list(under):
        parsed = wal_names.parse_key(info.key)
        if parsed is not None:
            found.setdefault(parsed.name, set()).add(parsed.sha256)
            continue
        claimed = records.is_claim(info.key)
        if claimed is not None:
            claims.setdefault(claimed, []).append(info.key)
    return found, claims


def ours(access: WalAccess, repository: Repository, trust: Any, name: str, claims: list[str],
         copies: set[str], later_ours: Callable[[], bool] = lambda: True, *, trust_unsigned: bool = False,
         newest_signed: Callable[[], str | None] = lambda: None) -> str | None:
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
            trusted.add(records.read(data, trust, access.area, name).sha256)
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
    if trust_unsigned and copies and not claims and _before(name, newest_signed()):
        # Archived before signatures: no record at all (a wrong or unknown signature is never "unsigned"), and not
        # newer than the newest file we did sign (an unsigned copy past the archive's end was planted, not archived
        # before signatures). Used only because the operator said trust_unsigned=1 (journaled by db-apply-logs);
        # one copy, whose content download() checks against the sha256 in its name.
        if len(copies) > 1:
            raise Duplicate(f"{name} is archived unsigned twice with different content; recovery stops here "
                            "rather than guess", hint="see cuisine-db wal status")
        return next(iter(copies))
    if (copies or claims) and later_ours():
        reason = f" ({why[0]})" if why else ""
        raise Forged(f"REFUSED: {name} is in the archive only as copies no trusted record names{reason}: "
                     "recovery stops here rather than replay them",
                     hint="someone may have written to the repository (docs/security.md); see cuisine-db wal status")
    return None


def _before(name: str, newest: str | None) -> bool:
    """Whether `name` is not newer than `newest` (the archive's newest signed file; None: nothing is signed). WAL file
    names sort as the archive grows: timeline first, then position; a timeline's history file before its segments."""
    return newest is not None and name <= newest


def newest_signed(repository: Repository, area: str, trust: Any) -> str | None:
    """The newest file of an archive area that has a record signed by a trusted key. It lists the whole area: only
    a fetch with trust_unsigned asks (db-apply-logs trust_unsigned=1, never the archive command or the prefetcher)."""
    from cuisine_db.backup.wal import records
    from cuisine_db.storage import signing

    claims: dict[str, list[str]] = {}
    for info in retrying(lambda: list(repository.list(wal_names.env_prefix(area)))):
        claimed = records.is_claim(info.key)
        if claimed is not None:
            claims.setdefault(claimed, []).append(info.key)
    for name in sorted(claims, reverse=True):
        for key in claims[name]:
            try:
                records.read(retrying(functools.partial(repository.get_bytes, key)), trust, area, name)
            except (signing.Untrusted, ObjectMissing):
                continue
            return name
    return None


def download(access: WalAccess, repository: Repository, identities: list[Any], name: str, sha256: str,
             destination: Path) -> None:
    """Decrypt and decompress one archived file into place (via a temporary name), checking its hash."""
    from cuisine_db.storage.pipeline import fetch as fetch_object

    temp = destination.with_name(f".{destination.name}.{os.getpid()}.part")
    try:
        with temp.open("wb") as handle:
            sink = _Hashing(handle)
            retrying(lambda: fetch_object(repository, wal_names.key(access.area, name, sha256), sink, identities))
        if sink.hash.hexdigest() != sha256:
            raise FailedError(f"{name}: the archived copy decrypts to content whose sha256 differs from its name")
        os.replace(temp, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _next_folder(folder: str) -> str:
    return f"{folder[:8]}{int(folder[8:16], 16) + 1:08X}"


def fetch(access: WalAccess, name: str, destination: Path, options: list[str] | None = None, *,
          trust_unsigned: bool = False) -> str:
    """Put `name` at `destination`: from the spool ('prefetched'; main.py does this itself without importing us)
    or from the archive ('fetched'), or NotArchived / an error. A segment fetched here means the prefetcher is
    behind or not running: it is started (with `options`, the call's own) unless it is alive. `trust_unsigned`
    takes a file archived before signatures (no record at all, and not newer than the newest signed file) too; the
    prefetcher never does."""
    from cuisine_db.backup.wal import spool

    wal_names.check(name)
    if (wal_names.is_segment(name) or wal_names.is_history(name)) and deliver(access.spool, name, destination):
        return "prefetched"
    repository = access.repository()
    folder = wal_names.folder(name)
    archived, claims = retrying(lambda: signed_listing(repository, access.area, folder))
    trust = access.trust()

    def later_ours() -> bool:
        """Whether one of the next few files after `name` (this folder, else the next one) has a trusted record."""
        from cuisine_db.backup.wal import records
        from cuisine_db.storage import signing

        found = claims
        after = sorted(n for n in found if n > name)[:3]
        if not after and wal_names.is_segment(name):
            found = retrying(lambda: signed_listing(repository, access.area, _next_folder(folder)))[1]
            after = sorted(found)[:3]
        for later in after:
            for key in found[later]:
                try:
                    records.read(retrying(functools.partial(repository.get_bytes, key)), trust, access.area, later)
                    return True
                except (signing.Untrusted, ObjectMissing):
                    continue
        return False

    digest = ours(access, repository, trust, name, claims.get(name, []), archived.get(name, set()), later_ours,
                  trust_unsigned=trust_unsigned, newest_signed=lambda: newest_signed(repository, access.area, trust))
    if digest is None:
        raise NotArchived(name)
    if wal_names.is_segment(name) and options is not None:
        spool.start(access, name, options)
    download(access, repository, access.identities(), name, digest, destination)
    if wal_names.is_segment(name):
        spool.note_asked(access.spool, name)
    return "fetched"


def deliver(spool_dir: Path, name: str, destination: Path) -> bool:
    """Move a prefetched segment (or the second copy kept of the last one, spool.AGAIN) into place and note where
    recovery stands, or copy a prefetched history file; False when it is not there. (served.py has its own copy
    of this on the path that imports nothing.)"""
    from cuisine_db.backup.wal import spool

    cached = spool.folder(spool_dir) / name
    if wal_names.is_history(name):  # copied, not moved: recovery asks for some twice
        temp = destination.with_name(f".{destination.name}.{os.getpid()}.part")
        try:
            shutil.copyfile(cached, temp)
        except FileNotFoundError:
            return False
        os.replace(temp, destination)
        return True
    if not cached.exists():
        cached = cached.with_name(f"{name}{spool.AGAIN}")
    try:
        os.replace(cached, destination)
    except FileNotFoundError:
        return False
    except OSError:
        shutil.copyfile(cached, destination)  # another filesystem
        cached.unlink()
    spool.note_asked(spool_dir, name)
    return True


def clear_prefetched(spool_dir: Path) -> None:
    """Before and after a recovery: its prefetcher stopped, nothing prefetched for it left to deliver."""
    from cuisine_db.backup.wal import spool

    spool.stop(spool_dir)

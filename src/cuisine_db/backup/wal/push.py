"""`wal push`: the archive_command. Idempotent, refuses to replace a different segment, and keeps up by pushing
the other segments waiting in archive_status in the same call.

Each file is read once, hashed (sha256 of its content names the stored object) and streamed through zstd and
age into a create-only object. First, a signed record of it is claimed (records.py): a create-only object whose
key only our signing key can derive. The same content pushed twice is success without a second upload; a
different content under the same name finds our claim naming another hash and is refused loudly, the stored copy
staying as it is. Objects someone else planted under a file's name are not ours: they stop nothing (`wal status`
reports them). Objects become visible only
when complete (local: temporary name, fsync, link; S3: one PUT or a completed multipart upload), so a push
killed at any moment leaves nothing that `wal fetch` would accept.

PostgreSQL calls the archive command once per file, one at a time. Like pgBackRest's and WAL-G's asynchronous
modes, a call also pushes up to `push_batch - 1` other `.ready` files on `push_threads` threads and notes each
success in a ledger under the spool folder; when PostgreSQL then asks for one of them, the call returns without
touching the repository: at once when the file is still the very one the batch stored (`identity()`), after checking
its hash against the ledger's otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from cuisine_db.backup.wal import wal_names
from cuisine_db.backup.wal.access import WalAccess
from cuisine_db.errors import CuisineDbError, FailedError
from cuisine_db.storage.base import ObjectExists, Repository

LEDGER = "pushed"
FAILURES = "push-failures.jsonl"


class Conflict(FailedError):
    """The archive holds a different file under this name: never replaced, always reported."""


class Outcome(NamedTuple):
    name: str
    state: str  # "stored", "present" (same content already archived), "ledger" (pushed ahead earlier)
    sha256: str
    size: int
    identity: str | None = None  # the file the content was read from, when it is sure to be that file (identity())


MAP_FROM = 1 << 20  # files this large are mapped rather than read (segments are 16 MB; history files are tiny)


class _Opened:
    """A file being archived as it was when opened: a change before its object becomes visible fails the push."""

    path: Path
    before: os.stat_result

    def unchanged(self) -> None:
        after = os.stat(self.path)
        fields = ("st_ino", "st_size", "st_mtime_ns")
        if any(getattr(after, field) != getattr(self.before, field) for field in fields):
            raise FailedError(f"{self.path.name} changed while it was being archived; nothing was stored")


class Contents(_Opened):
    """A file's bytes for hashing (the ledger's check of a file pushed ahead; OnePass below is what stores), and a
    check that the file did not change meanwhile.

    A segment is mapped (MAP_POPULATE: its pages are in the page cache, PostgreSQL just wrote them) instead of
    read into a fresh 16 MB buffer, which cost 8 ms of page faults and copying per segment. PostgreSQL never
    changes a file once it is marked .ready; `unchanged()` still compares size, inode and modification time
    before the object becomes visible, so that a file changed between hashing and compressing (which a read
    into memory would have hidden as a torn copy) fails the push instead of storing bytes unlike its name."""

    def __init__(self, path: Path) -> None:
        import mmap

        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.before = os.fstat(fd)
            self.path = path
            self.data: Any = None
            if self.before.st_size >= MAP_FROM:
                with contextlib.suppress(OSError):  # a file system that cannot map files: read it instead
                    self.data = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                                          prot=mmap.PROT_READ)
            if self.data is None:
                with os.fdopen(os.dup(fd), "rb") as handle:
                    self.data = handle.read()
        finally:
            os.close(fd)
        self.size = len(self.data)

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def close(self) -> None:
        if not isinstance(self.data, bytes):
            self.data.close()

    def __enter__(self) -> Contents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


PIECE = 1 << 20


class OnePass(_Opened):
    """A file to store, read once in 1 MB pieces, each compressed while it is still in the CPU's cache: the sha256
    that names the object and the zstd frame that is stored are of the very same bytes, and a 16 MB segment costs
    4-5 ms less CPU than hashing and then compressing a mapped copy in two passes over memory (docs/benchmarks.md,
    stop 17). A file of HASH_BESIDE_FROM or more is hashed on a second thread (_HashBeside) while this one
    compresses. `unchanged()` still compares the file with what it was when opened before the object becomes
    visible."""

    def __init__(self, path: Path, level: int) -> None:
        from cuisine_db.storage.pipeline import zstd_compressor

        compressor = zstd_compressor(level).compressobj()
        frames: list[bytes] = []
        head = b""
        size = 0
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.before = os.fstat(fd)
            self.path = path
            hasher = _HashBeside() if self.before.st_size >= HASH_BESIDE_FROM else _HashHere()
            try:
                while view := hasher.read(fd):
                    if len(head) < 32:
                        head += bytes(view[:32 - len(head)])
                    frames.append(compressor.compress(view))
                    size += len(view)
            finally:
                self.digest = hasher.finish()
        finally:
            os.close(fd)
        frames.append(compressor.flush())
        self.size = size
        self.head = head  # the first 32 bytes: a segment's long page header (records.system_identifier)
        self.frame = frames  # one zstd frame in the pieces zstd gave (not joined: a copy age does not need)

    def sha256(self) -> str:
        return self.digest


HASH_BESIDE_FROM = 4 << 20  # segments (16 MB) are hashed beside compression; history files and the like are not
RING = 4  # pieces in flight between the reading (compressing) thread and the hashing one


class _HashHere:
    """Pieces read into one reused buffer and hashed on the reading thread."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._buffer = bytearray(PIECE)

    def read(self, fd: int) -> memoryview:
        """The next piece of the file (empty at its end), hashed."""
        view = memoryview(self._buffer)[:os.readv(fd, [self._buffer])]
        self._digest.update(view)
        return view

    def finish(self) -> str:
        return self._digest.hexdigest()


class _HashBeside:
    """The sha256 of the pieces computed on a second thread while the reading thread compresses them. hashlib and
    zstd both release the GIL on large buffers, so on two cores a segment's ~14 ms of hashing runs beside its
    18-39 ms of compression instead of before it: the full push's wall time is what PostgreSQL's archiver waits
    on (issue 15's 120 ms). Pieces go round a ring of RING buffers; a buffer is read into again only once the
    hashing thread is done with it. `_thread` rather than `threading`: the archive command's import time
    (tests/integration/test_wal_push_imports.py keeps threading off the path), and nothing here needs more than
    locks."""

    def __init__(self) -> None:
        import _thread

        self._digest = hashlib.sha256()
        self._buffers = [bytearray(PIECE) for _ in range(RING)]
        self._counts = [0] * RING
        self._full = [_thread.allocate_lock() for _ in range(RING)]  # held until the slot holds a piece to hash
        self._free = [_thread.allocate_lock() for _ in range(RING)]  # held while the hashing thread reads the slot
        for lock in self._full:
            lock.acquire()
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._slot = 0
        self._ended = False
        self._error: BaseException | None = None
        _thread.start_new_thread(self._hash, ())

    def _hash(self) -> None:
        slot = 0
        while True:
            self._full[slot].acquire()
            count = self._counts[slot]
            if count and self._error is None:
                try:
                    self._digest.update(memoryview(self._buffers[slot])[:count])
                except BaseException as exc:  # handed to the reading thread, which raises it
                    self._error = exc
            self._free[slot].release()
            if not count:
                self._done.release()
                return
            slot = (slot + 1) % RING

    def _hand_over(self, count: int) -> None:
        slot = self._slot
        self._counts[slot] = count
        self._full[slot].release()
        self._slot = (slot + 1) % RING

    def read(self, fd: int) -> memoryview:
        """The next piece of the file (empty at its end), handed to the hashing thread; the view stays valid until
        the next RING - 1 reads."""
        slot = self._slot
        self._free[slot].acquire()  # the hashing thread is done with what this buffer held
        try:
            count = os.readv(fd, [self._buffers[slot]])
        except BaseException:
            self._free[slot].release()
            raise
        self._hand_over(count)
        if not count:
            self._ended = True
        return memoryview(self._buffers[slot])[:count]

    def finish(self) -> str:
        """The hex digest once the hashing thread has hashed every piece (also on the way out of a failed read)."""
        if not self._ended:
            self._free[self._slot].acquire()
            self._hand_over(0)
            self._ended = True
        self._done.acquire()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()


def sha256_of(path: Path) -> tuple[str, int]:
    with Contents(path) as contents:
        return contents.sha256(), contents.size


def stored_hashes(repository: Repository, env: str, name: str) -> set[str]:
    found = set()
    for key in repository.keys(wal_names.prefix(env, name)):
        parsed = wal_names.parse_key(key)
        if parsed is not None and parsed.name == name:
            found.add(parsed.sha256)
    return found


def push_one(access: WalAccess, repository: Repository, recipients: list[Any], path: Path,
             signer: Any = None) -> Outcome:
    """Store one file unless the same content is already archived; refuse a different one."""
    name = wal_names.check(path.name)
    settled_before = time.time_ns() - SETTLED_NS
    contents = OnePass(path, access.compress_level)
    outcome = _push_contents(access, repository, recipients, name, contents, signer or access.signer())
    return outcome._replace(identity=identity(contents, settled_before))


IDENTITY = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
SETTLED_NS = 50_000_000  # five ticks of the coarsest clock (HZ=100) Linux takes file times from


def identity(contents: _Opened, settled_before: int) -> str | None:
    """Which file `contents` was read from (device, inode, size, modification and change times in nanoseconds), for
    the ledger: a later call for this file is answered without hashing it again only while all five are the same
    (served.acknowledged). None, and the later call hashes, unless the file is still as it was opened (after the
    object is stored) and its times were settled before it was opened.

    Why the five are enough: PostgreSQL never writes into a segment once it is complete and marked .ready, and
    recycles one only after it is archived, by renaming it (a new name, a new change time). Anything else that
    could come between the batch and PostgreSQL's call for this file shows in the five: a write moves the
    modification and change times, a truncation the size, a rename or a link the change time, a copy put in its
    place the inode. A write lands on a time no earlier than the clock's coarse tick, so it could leave both times
    as they were only within the tick of the file's last change: with the times more than SETTLED_NS older than
    the clock before the file was opened, any write from then on moves them. (A network file system may stamp times
    with its server's clock: there the margin holds as far as the two clocks agree, and a write racing the batch's
    read is caught no better than unchanged() catches it.)"""
    try:
        now = os.stat(contents.path)
    except OSError:
        return None
    if any(getattr(now, field) != getattr(contents.before, field) for field in IDENTITY):
        return None
    if max(now.st_mtime_ns, now.st_ctime_ns) >= settled_before:
        return None
    return " ".join(str(getattr(now, field)) for field in IDENTITY)


def _push_contents(access: WalAccess, repository: Repository, recipients: list[Any], name: str,
                   contents: OnePass, signer: Any) -> Outcome:
    from cuisine_db.backup.wal import records
    from cuisine_db.storage.pipeline import store_frame

    digest = contents.sha256()
    system = records.system_identifier(name, contents.head)
    if system is not None and access.system_area is not None and access.system_area != f"{access.env}+{system}":
        # An upgraded environment's area holds its own system identifier's WAL only (backup/wal/areas.py).
        raise Conflict(f"REFUSED: {name} is from system identifier {system}, not the one archiving into "
                       f"{access.system_area}; nothing was stored",
                       hint=f"an old cluster of {access.env} running again? cuisine-db wal status --env {access.env}")
    claim = records.claim_key(signer, access.area, name)
    record = records.make(signer, access.area, name, digest, contents.size, system)
    contents.unchanged()
    try:
        repository.put_bytes(claim, record, overwrite=False)
    except ObjectExists:
        from cuisine_db.storage import signing

        try:
            claimed = records.read(repository.get_bytes(claim), access.trust(), access.area, name)
        except signing.Untrusted as exc:
            raise Conflict(f"REFUSED: {name}'s record in the archive does not verify ({exc.why}); nothing was "
                           "stored", hint="the signing key changed, or trusted_signers lacks it: "
                                          f"cuisine-db wal status --env {access.env}") from None
        if claimed.sha256 != digest:
            raise Conflict(
                f"REFUSED: {name} is already archived with different content (archived sha256 "
                f"{claimed.sha256[:16]}..., this server's {digest[:16]}...): the archived copy is kept as it is",
                hint="two servers may be archiving into one place (a restored copy with archiving on?); "
                     f"cuisine-db wal status --env {access.env} shows the archive") from None
        if digest in stored_hashes(repository, access.area, name):
            return Outcome(name, "present", digest, contents.size)
        # Our record without its copy: a push killed between the two. Store the copy now.
    # ObjectExists: another push of the very same content won the race (the hash is in the key).
    with contextlib.suppress(ObjectExists):
        store_frame(repository, wal_names.key(access.area, name, digest), contents.frame, recipients,
                    plain_size=contents.size, overwrite=False, before_commit=contents.unchanged)
    return Outcome(name, "stored", digest, contents.size)


def _ledger(access: WalAccess) -> Path:
    return access.spool / LEDGER


def _from_ledger(access: WalAccess, path: Path) -> Outcome | None:
    entry = _ledger(access) / path.name
    try:
        noted = next(iter(entry.read_text().split()), "")  # the sha256, then the identity (served.acknowledged)
    except OSError:
        return None
    digest, size = sha256_of(path)
    with contextlib.suppress(OSError):
        entry.unlink()
    return Outcome(path.name, "ledger", digest, size) if noted == digest else None


def _note(access: WalAccess, outcome: Outcome) -> None:
    folder = _ledger(access)
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = folder / f".{outcome.name}.{os.getpid()}"
        temp.write_text("".join(f"{line}\n" for line in (outcome.sha256, outcome.identity) if line))
        os.replace(temp, folder / outcome.name)


def record_failure(access: WalAccess, name: str, error: CuisineDbError | OSError) -> None:
    """Best effort: `wal status` shows recent refusals and failures from here as well as pg_stat_archiver."""
    import json

    message = error.message if isinstance(error, CuisineDbError) else str(error)
    line = json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "name": name,
                       "conflict": isinstance(error, Conflict), "error": message})
    with contextlib.suppress(OSError):
        access.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (access.spool / FAILURES).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def waiting(status_dir: Path, asked: str, limit: int, access: WalAccess) -> list[str]:
    """Other files PostgreSQL has marked ready, oldest first, that no earlier call pushed ahead already."""
    if limit <= 0:
        return []
    try:
        entries = os.listdir(status_dir)
    except OSError:
        return []
    ledger = _ledger(access)
    found = []
    for entry in sorted(entries):
        if not entry.endswith(".ready"):
            continue
        name = entry[: -len(".ready")]
        if name == asked or (ledger / name).exists():
            continue
        try:
            wal_names.check(name)
        except wal_names.BadWalName:
            continue
        found.append(name)
        if len(found) >= limit:
            break
    return found


def push(access: WalAccess, path: Path) -> list[Outcome]:
    """Archive `path` (and other waiting files); the first outcome is the asked file's. Raises on failure."""
    wal_names.check(path.name)
    if not path.is_file():
        raise FailedError(f"{path} does not exist or is not a file")
    noted = _from_ledger(access, path)
    if noted is not None:
        return [noted]
    repository = access.repository()
    recipients = access.parsed_recipients()
    signer = access.signer()
    others = waiting(path.parent / "archive_status", path.name, access.push_batch - 1, access)
    if not others:
        return [push_one(access, repository, recipients, path, signer)]
    from concurrent.futures import ThreadPoolExecutor  # here: its import (with logging) is ~7 ms of a lone call's CPU

    with ThreadPoolExecutor(max_workers=min(access.push_threads, len(others) + 1),
                            thread_name_prefix="wal-push") as pool:
        futures = {name: pool.submit(push_one, access, repository, recipients, path.parent / name, signer)
                   for name in [path.name, *others]}
        outcomes = []
        for name, future in futures.items():
            try:
                outcome = future.result()
            except (CuisineDbError, OSError) as exc:
                if name == path.name:
                    raise
                record_failure(access, name, exc)  # PostgreSQL will ask for it again, and hear about it then
                continue
            if name != path.name:
                _note(access, outcome)
            outcomes.append(outcome)
    return sorted(outcomes, key=lambda outcome: outcome.name != path.name)

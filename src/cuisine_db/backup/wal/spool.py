"""The fetch-ahead spool: a background prefetcher keeps the next archived segments, verified, in a bounded folder.

While PostgreSQL replays segment N, the prefetcher (`cuisine-db wal prefetch`, started detached by the first
`wal fetch` of a recovery that finds no prefetcher alive, or by the restore itself before the server starts) has
N+1..N+k decrypted, decompressed and checked in `<spool>/prefetch/`, on one thread per core (age and zstd release
the GIL). Each segment goes through exactly what `wal fetch` does (fetch.ours: the record signed by a trusted key,
then fetch.download: the sha256 of the plain bytes against that record) into a temporary name, renamed into place
only when it verified: the folder holds verified copies only, and `wal fetch` then only renames one into
pg_wal (main.py, without importing anything but `os`).

The spool is bounded in segments (`wal.prefetch`) and bytes (`wal.spool_mb`), counting the copies being written:
a download starts only when its whole size (its record's) fits beside what is on disk. Where recovery stands is
the name the last `wal fetch` delivered (`<spool>/prefetch/.asked`); the prefetcher deletes what is behind it and
stops when nothing asked for a while, when the folder it fills is removed or replaced (the next recovery's), or
when told to (`stop()`). A segment it cannot fetch or verify is skipped, not retried: `wal fetch` fetches it
itself when PostgreSQL asks, and fails loudly then (exit 254, naming it). Killed at any moment, it leaves at most
`.part` files, which the next prefetcher (or `stop()`) removes; `wal fetch` starts a new one on its next miss.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from pathlib import Path
from typing import Any

from cuisine_db.backup.wal import names
from cuisine_db.backup.wal.access import WalAccess

FOLDER = "prefetch"
ASKED = ".asked"
LOCK = ".prefetcher"  # in the spool folder (not the prefetch one): flock held by the live prefetcher, its pid
LOG = "prefetcher.log"
IDLE_SECONDS = 60.0  # nothing delivered for this long: the recovery is over or stalled (a miss starts another)
RELIST_SECONDS = 1.0  # how often the archive is listed again while it has nothing more ahead
PART = ".part"


def folder(spool: Path) -> Path:
    return spool / FOLDER


def note_asked(spool: Path, name: str) -> None:
    """Where recovery stands (`wal fetch` calls it after each delivery): the prefetcher works ahead of it."""
    target = folder(spool) / ASKED
    temp = target.with_name(f"{ASKED}.{os.getpid()}")
    with contextlib.suppress(OSError):
        with open(temp, "w") as handle:
            handle.write(name)
        os.replace(temp, target)


def _asked(where: Path) -> tuple[str | None, float]:
    try:
        with open(where / ASKED) as handle:
            name = handle.read().strip()
        return (name if names.is_segment(name) else None), os.stat(where / ASKED).st_mtime
    except OSError:
        return None, 0.0


def alive(spool: Path) -> int | None:
    """The pid of the prefetcher working on this spool, or None (its lock is free)."""
    import fcntl

    try:
        fd = os.open(spool / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                pid = int(os.read(fd, 32).decode().strip() or 0)
            except ValueError:
                return None
            return pid if pid and _is_prefetcher(pid) else None  # (a new holder may not have written its own yet)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _is_prefetcher(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"\0prefetch\0" in handle.read()
    except OSError:
        return False


def stop(spool: Path) -> None:
    """Stop the prefetcher of this spool (if any) and empty the spool: before a new recovery nothing prefetched for
    an earlier one may be delivered, and after one nothing stays behind."""
    import shutil
    import signal

    deadline = time.monotonic() + 10
    while (pid := alive(spool)) is not None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    shutil.rmtree(folder(spool), ignore_errors=True)


PROGRAM = "import sys; from cuisine_db.backup.wal.main import main; sys.exit(main(sys.argv[1:]))"


def start(access: WalAccess, after: str, options: list[str]) -> None:
    """Start a detached prefetcher working ahead of `after` unless one is alive; `options` are the calling
    `wal fetch`'s own (--config, --env, --spool, --identity-file, --credentials-file). Best effort: a prefetcher
    that does not start only means slower fetches."""
    import subprocess
    import sys

    if access.prefetch <= 1 or alive(access.spool) is not None:
        return
    with contextlib.suppress(OSError):
        access.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(access.spool / LOG, "ab") as output:
            subprocess.Popen([sys.executable, "-c", PROGRAM, "prefetch", *options, after], stdin=subprocess.DEVNULL,
                             stdout=output, stderr=output, start_new_session=True, close_fds=True)


class Prefetcher:
    """Fills one spool ahead of recovery, within its bound, until recovery no longer needs it."""

    def __init__(self, access: WalAccess, after: str, *, until: str | None = None,
                 idle: float = IDLE_SECONDS) -> None:
        self.access = access
        self.until = until  # nothing after this segment is wanted (a recovery to the backup's own end)
        self.where = folder(access.spool)
        self.start_after = after
        self.idle = idle
        self.max_segments = max(access.prefetch, 1)
        self.max_bytes = access.spool_mb << 20
        self.done: set[str] = set()  # fetched into the spool (or failed): never fetched again by this process
        self.running: dict[str, int] = {}  # name -> reserved bytes
        self.known: dict[str, tuple[set[str], list[str]]] = {}  # archived segments ahead: copies, record keys
        self.listed_folders: dict[str, float] = {}

    def _on_disk(self) -> tuple[int, int]:
        count = size = 0
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.where):
                if names.is_segment(entry.name) or entry.name.endswith(PART):
                    with contextlib.suppress(OSError):
                        size += entry.stat().st_size
                    count += names.is_segment(entry.name)
        return count, size

    def _forget_behind(self, asked: str) -> None:
        with contextlib.suppress(OSError):
            for entry in os.listdir(self.where):
                if names.is_segment(entry) and entry <= asked:
                    with contextlib.suppress(OSError):
                        os.unlink(self.where / entry)

    def _list(self, repository: Any, asked: str) -> None:
        """Learn the archived segments after `asked` on its timeline: its folder, and the next one when needed."""
        from cuisine_db.backup.wal.fetch import _next_folder, retrying, signed_listing

        now = time.monotonic()
        current = names.folder(asked)
        for name in [current, _next_folder(current)]:
            if now - self.listed_folders.get(name, -RELIST_SECONDS) < RELIST_SECONDS:
                continue
            self.listed_folders[name] = now
            found, claims = retrying(functools.partial(signed_listing, repository, self.access.area, name))
            for segment, records_of in claims.items():
                if names.is_segment(segment) and segment > asked:
                    self.known[segment] = (found.get(segment, set()), records_of)
            ahead = [n for n in self.known if n > asked and n[:8] == asked[:8]]
            if len(ahead) >= self.max_segments:
                break

    def _fetch_one(self, repository: Any, identities: list[Any], trust: Any, name: str, copies: set[str],
                   records_of: list[str]) -> bool:
        """Whether `name` is settled: in the spool, or failed (left to wal fetch). Not settled: its record is there
        but its copy is not stored yet (a push in progress), so it is tried again after the next listing."""
        from cuisine_db.backup.wal import fetch

        try:
            digest = fetch.ours(self.access, repository, trust, name, records_of, copies)
            if digest is None:
                return False
            fetch.download(self.access, repository, identities, name, digest, self.where / name)
        except Exception as exc:  # wal fetch fetches it itself when asked, and reports the failure then
            import sys

            sys.stderr.write(f"cuisine-db wal prefetch: {name}: {type(exc).__name__}: {exc} (left to wal fetch)\n")
        return True

    def _record_size(self, repository: Any, trust: Any, name: str, records_of: list[str]) -> int | None:
        from cuisine_db.backup.wal import records
        from cuisine_db.backup.wal.fetch import retrying
        from cuisine_db.storage import signing
        from cuisine_db.storage.base import ObjectMissing

        for key in records_of:
            try:
                return records.read(retrying(functools.partial(repository.get_bytes, key)), trust, self.access.area,
                                    name).size
            except (signing.Untrusted, ObjectMissing):
                continue
        return None

    def run(self) -> int:
        import fcntl
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        self.access.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.where.mkdir(exist_ok=True, mode=0o700)
        lock = os.open(self.access.spool / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # another prefetcher serves this spool
        os.ftruncate(lock, 0)
        os.write(lock, f"{os.getpid()}\n".encode())
        identity = os.stat(self.where).st_ino
        for entry in os.listdir(self.where):  # what a killed prefetcher was writing
            if entry.endswith(PART):
                with contextlib.suppress(OSError):
                    os.unlink(self.where / entry)
        repository = self.access.repository()
        trust = self.access.trust()
        identities = self.access.identities()
        sizes: dict[str, int] = {}
        futures: dict[Future[bool], str] = {}
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.access.fetch_threads, thread_name_prefix="wal-prefetch") as pool:
            while True:
                try:
                    if os.stat(self.where).st_ino != identity:
                        break
                except OSError:
                    break  # stop() or the next recovery removed the folder
                asked, touched = _asked(self.where)
                asked = max(asked or self.start_after, self.start_after)
                if time.time() - max(touched, 0.0) > self.idle and time.monotonic() - started > self.idle:
                    break
                if self.until is not None and asked >= self.until and not futures:
                    break
                self._forget_behind(asked)
                for name in [n for n in self.known if n <= asked]:
                    del self.known[name]
                try:
                    self._list(repository, asked)
                except Exception as exc:
                    import sys

                    sys.stderr.write(f"cuisine-db wal prefetch: listing the archive: {exc}\n")
                ahead = sorted(n for n in self.known if n > asked and n[:8] == asked[:8]
                               and (self.until is None or n <= self.until))[: self.max_segments]
                count, size = self._on_disk()
                reserved = sum(self.running.values())
                for name in ahead:
                    if name in self.done or name in self.running:
                        continue
                    if name not in sizes:
                        found = self._record_size(repository, trust, name, self.known[name][1])
                        if found is None:
                            self.done.add(name)  # no trusted record: wal fetch decides what that means
                            continue
                        sizes[name] = found
                    if (count + len(self.running) >= self.max_segments
                            or size + reserved + sizes[name] > self.max_bytes
                            or len(self.running) >= self.access.fetch_threads):
                        break
                    self.running[name] = sizes[name]
                    reserved += sizes[name]
                    copies, records_of = self.known[name]
                    futures[pool.submit(self._fetch_one, repository, identities, trust, name, copies,
                                        records_of)] = name
                if futures:
                    finished, _ = wait(list(futures), timeout=0.05, return_when=FIRST_COMPLETED)
                    for future in finished:
                        name = futures.pop(future)
                        self.running.pop(name, None)
                        if future.result():
                            self.done.add(name)
                else:
                    time.sleep(0.05)
        return 0

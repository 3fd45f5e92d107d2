"""The fetch-ahead spool's prefetcher (`cuisine-db wal prefetch`): the process that keeps the next archived segments,
verified exactly as `wal fetch` verifies them (fetch.ours, fetch.download), in the bounded folder spool.py describes.
It lives apart from spool.py so that fetch.py can start and feed the spool without importing what imports it."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from typing import Any

from cuisine_db.backup.wal import spool, wal_names
from cuisine_db.backup.wal.access import WalAccess


class Prefetcher:
    """Fills one spool ahead of recovery, within its bound, until recovery no longer needs it."""

    def __init__(self, access: WalAccess, after: str, *, until: str | None = None,
                 idle: float = spool.IDLE_SECONDS) -> None:
        self.access = access
        self.until = until  # nothing after this segment is wanted (a recovery to the backup's own end)
        self.where = spool.folder(access.spool)
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
                if wal_names.is_segment(entry.name) or entry.name.endswith((spool.PART, spool.AGAIN)):
                    with contextlib.suppress(OSError):
                        size += entry.stat().st_size
                    count += wal_names.is_segment(entry.name)
        return count, size

    def _forget_behind(self, asked: str, markers: list[tuple[int, str]]) -> None:
        with contextlib.suppress(OSError):
            for entry in os.listdir(self.where):
                if wal_names.is_segment(entry) and entry <= asked:
                    with contextlib.suppress(OSError):
                        os.unlink(self.where / entry)
        for _, name in markers[:-1]:  # the newest says where recovery stands
            with contextlib.suppress(OSError):
                os.unlink(self.where / f"{spool.ASKED}{name}")

    def _list(self, repository: Any, asked: str) -> None:
        """Learn the archived segments after `asked` on its timeline: its folder, and the next one when needed."""
        from cuisine_db.backup.wal.fetch import _next_folder, retrying, signed_listing

        now = time.monotonic()
        current = wal_names.folder(asked)
        for name in [current, _next_folder(current)]:
            if now - self.listed_folders.get(name, -spool.RELIST_SECONDS) < spool.RELIST_SECONDS:
                continue
            self.listed_folders[name] = now
            found, claims = retrying(functools.partial(signed_listing, repository, self.access.area, name))
            for segment, records_of in claims.items():
                if wal_names.is_segment(segment) and segment > asked:
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
            if name == self.until:
                spool.keep_again(self.where, name)
        except Exception as exc:  # wal fetch fetches it itself when asked, and reports the failure then
            import sys

            sys.stderr.write(f"cuisine-db wal prefetch: {name}: {type(exc).__name__}: {exc} (left to wal fetch)\n")
        return True

    def _histories(self, repository: Any, identities: list[Any], trust: Any) -> None:
        """The timeline history files recovery asks for, into the spool: the starting timeline's (beyond the first),
        then each later one the archive holds, up to the first it lacks (promotion's scan for a free timeline asks
        for each in turn, and the parent's again). Verified like segments; served by copy, as each may be asked
        for twice. One the archive lacks is never answered from here: `wal fetch` asks the archive. Only in a spool
        tagged for a restore (spool.TAG): restores clear a spool filled for another restore (another archive area,
        whose history files name the same timelines), and then after the recovery; a spool that serves a standby
        keeps no history file that could outlive the archive area it came from."""
        from cuisine_db.backup.wal import fetch

        if not (self.where / spool.TAG).exists():
            return
        timeline = wal_names.timeline(self.start_after)
        while True:
            name = f"{timeline:08X}.history"
            try:
                if timeline > 1:
                    found, claims = fetch.retrying(
                        functools.partial(fetch.signed_listing, repository, self.access.area, wal_names.folder(name)))
                    digest = fetch.ours(self.access, repository, trust, name, claims.get(name, []),
                                        found.get(name, set()))
                    if digest is None:
                        return
                    fetch.download(self.access, repository, identities, name, digest, self.where / name)
            except Exception as exc:  # left to wal fetch, which reports it if recovery asks
                import sys

                sys.stderr.write(f"cuisine-db wal prefetch: {name}: {type(exc).__name__}: {exc} (left to wal fetch)\n")
                return
            timeline += 1

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
        lock = os.open(self.access.spool / spool.LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # another prefetcher serves this spool
        os.ftruncate(lock, 0)
        identity = os.stat(self.where).st_ino
        for entry in os.listdir(self.where):  # what a killed prefetcher was writing
            if entry.endswith(spool.PART):
                with contextlib.suppress(OSError):
                    os.unlink(self.where / entry)
        repository = self.access.repository()
        trust = self.access.trust()
        identities = self.access.identities()
        # The pid goes in once the keys and credentials are read: `wal prefetch --detach` waits for it (spool.ready)
        # and its caller then removes the copies it made of them.
        os.write(lock, f"{os.getpid()}\n".encode())
        sizes: dict[str, int] = {}
        futures: dict[Future[bool], str] = {}
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.access.fetch_threads, thread_name_prefix="wal-prefetch") as pool:
            pool.submit(self._histories, repository, identities, trust)
            while True:
                try:
                    if os.stat(self.where).st_ino != identity:
                        break
                except OSError:
                    break  # spool.stop() or the next recovery removed the folder
                markers = spool.markers(self.where)  # read once: where recovery stands, and what is behind it
                asked, touched = spool.last_asked(self.where, markers)
                asked = max(asked or self.start_after, self.start_after)
                if time.time() - max(touched, 0.0) > self.idle and time.monotonic() - started > self.idle:
                    break
                if self.until is not None and asked >= self.until and not futures:
                    break
                self._forget_behind(asked, markers)
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

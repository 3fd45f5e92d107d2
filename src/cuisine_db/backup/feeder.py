"""Serving a dump folder to pg_restore straight from the repository, without writing the data to disk.

pg_restore reads the directory format from files and needs them by name (`<dump id>.dat`). Large objects
are offered as named pipes: when a pg_restore worker opens one, a thread streams that object out of the
repository (sha256, age, zstd) into it. A pipe nobody opens costs nothing: one opener thread tries each
pending pipe without blocking (ENXIO means no reader yet), so pg_restore's own order decides what is read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from cuisine_db.postgres import safe_files

Produce = Callable[[BinaryIO], Any]
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class Feeder:
    def __init__(self, folder: Path, *, workers: int, on_error: Callable[[BaseException], None]) -> None:
        self.folder = folder
        self.pending: dict[str, Produce] = {}
        self.results: dict[str, Future[Any]] = {}
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore-object")
        self.stopping = threading.Event()
        self.on_error = on_error
        self.lock = threading.Lock()
        self.opener = threading.Thread(target=self._open_loop, name="restore-opener", daemon=True)

    def write_file(self, name: str, produce: Produce) -> Any:
        """Write a small file outright (toc.dat, tiny tables): simpler than a pipe and just as cheap."""
        with safe_files.create(self.folder / name) as fd, os.fdopen(os.dup(fd), "wb") as handle:
            return produce(handle)

    def pipe(self, name: str, produce: Produce) -> None:
        safe_files.remove(self.folder / name)  # a plain name in our folder (checked); mkfifo never follows a link
        os.mkfifo(self.folder / name, 0o600)
        with self.lock:
            self.pending[name] = produce

    def start(self) -> None:
        self.opener.start()

    def _open_loop(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                waiting = list(self.pending.items())
            for name, produce in waiting:
                try:
                    fd = os.open(self.folder / name, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:
                        continue  # no reader yet
                    self._failed(exc)
                    return
                os.set_blocking(fd, True)
                with contextlib.suppress(OSError):
                    # A 1 MiB pipe instead of 64 KiB: far fewer wake-ups between us and pg_restore.
                    fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)
                with self.lock:
                    del self.pending[name]
                self.results[name] = self.pool.submit(self._feed, fd, produce)
            self.stopping.wait(0.01)

    def _feed(self, fd: int, produce: Produce) -> Any:
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                return produce(out)
        except BaseException as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: BaseException) -> None:
        # A broken pipe means pg_restore stopped reading; its own error is the one to report.
        if not isinstance(exc, BrokenPipeError):
            self.on_error(exc)

    def opened(self, name: str) -> bool:
        """Whether pg_restore has opened this pipe (it sends the COPY for a table before opening its data)."""
        return name in self.results

    def piped(self) -> dict[str, Any]:
        """What each pipe's producer returned (call after close)."""
        return {name: future.result() for name, future in self.results.items() if future.exception() is None}

    def first_error(self) -> BaseException | None:
        for future in self.results.values():
            if future.done() and future.exception() is not None and not isinstance(future.exception(),
                                                                                     BrokenPipeError):
                return future.exception()
        return None

    def unread(self) -> list[str]:
        with self.lock:
            return sorted(self.pending)

    def close(self) -> None:
        """Stop offering pipes and wait for the streams in flight (they end when pg_restore reads or exits)."""
        self.stopping.set()
        if self.opener.is_alive():
            self.opener.join()
        self.pool.shutdown(wait=True)
        # Unlink the pipes nobody opened, so nothing can block on them later.
        for name in self.unread():
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()

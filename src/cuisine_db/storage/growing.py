"""Reading files while another process writes them, so a tool's output streams on without a full copy on disk.

pg_dump's directory format writes one file per table and cannot write to a pipe. Each file is read as it
grows, and the blocks already read are handed back to the filesystem (FALLOCATE_PUNCH_HOLE), so at any
moment the staging folder holds only what the pipeline has not consumed yet. Linux's inotify says when a
writer closed a file; without it (or if its queue overflows) files count as finished when the writer exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import os
import select
import struct
import threading
import time
from pathlib import Path
from typing import Any

IN_CLOSE_WRITE = 0x08
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_Q_OVERFLOW = 0x4000
_FALLOC_KEEP_SIZE = 0x01
_FALLOC_PUNCH_HOLE = 0x02
_EVENT = struct.Struct("iIII")

_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return _libc


class DirectoryWatch:
    """New files and finished writes in one folder: inotify where there is one, a listing always."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.known: set[str] = set()
        self.fd = -1
        with contextlib.suppress(AttributeError, OSError):
            libc = _c()
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd >= 0 and libc.inotify_add_watch(fd, bytes(folder), IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO) >= 0:
                self.fd = fd
            elif fd >= 0:
                os.close(fd)

    @property
    def sees_closes(self) -> bool:
        return self.fd >= 0

    def poll(self, timeout: float) -> tuple[list[str], set[str]]:
        """Wait up to `timeout` seconds; return (files that appeared, files whose writer closed them)."""
        closed: set[str] = set()
        if self.fd >= 0:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    data = os.read(self.fd, 1 << 16)
                    offset = 0
                    while offset + _EVENT.size <= len(data):
                        _, mask, _, length = _EVENT.unpack_from(data, offset)
                        name = data[offset + _EVENT.size: offset + _EVENT.size + length].rstrip(b"\0").decode()
                        offset += _EVENT.size + length
                        if mask & IN_Q_OVERFLOW:
                            continue  # lost events: those files finish when the writer exits
                        if mask & IN_CLOSE_WRITE and name:
                            closed.add(name)
        else:
            time.sleep(timeout)
        fresh = sorted(name for name in os.listdir(self.folder) if name not in self.known)
        self.known.update(fresh)
        return fresh, closed

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Abandoned(Exception):
    """The reader was told to stop (the writer failed or the run is being cancelled)."""


class GrowingFile(io.RawIOBase):
    """A file another process is still writing: reads wait for more data until the writer is finished, and
    the space behind the reader is freed as it goes."""

    def __init__(self, path: Path, *, poll: float = 0.02, punch_every: int = 8 << 20) -> None:
        super().__init__()
        self.path = path
        # Read-write: punching holes needs a descriptor open for writing. Nothing is ever written through it.
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self.offset = 0
        self.punched = 0
        self.poll = poll
        self.punch_every = punch_every
        self.can_punch = True
        self.finished = threading.Event()
        self.abandoned = False

    def readable(self) -> bool:
        return True

    def finish(self) -> None:
        """The writer closed the file: what is there now is all there will be."""
        self.finished.set()

    def abandon(self) -> None:
        self.abandoned = True
        self.finished.set()

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes as soon as some are there; b"" only once the writer is finished."""
        size = size if size > 0 else 1 << 20
        while True:
            if self.abandoned:
                raise Abandoned(str(self.path))
            was_finished = self.finished.is_set()
            data = os.pread(self.fd, size, self.offset)
            if data:
                self.offset += len(data)
                if self.offset - self.punched >= self.punch_every:
                    self._punch()
                return data
            if was_finished:
                return b""
            self.finished.wait(self.poll)

    def readinto(self, buffer: Any) -> int:
        while True:
            if self.abandoned:
                raise Abandoned(str(self.path))
            was_finished = self.finished.is_set()
            count = os.preadv(self.fd, [buffer], self.offset)
            if count:
                self.offset += count
                if self.offset - self.punched >= self.punch_every:
                    self._punch()
                return count
            if was_finished:
                return 0
            self.finished.wait(self.poll)

    def _punch(self) -> None:
        if not self.can_punch:
            return
        result = _c().fallocate(self.fd, _FALLOC_PUNCH_HOLE | _FALLOC_KEEP_SIZE, self.punched,
                                self.offset - self.punched)
        if result != 0:
            self.can_punch = False  # a filesystem without hole punching: space comes back at unlink
        else:
            self.punched = self.offset

    def size_on_disk(self) -> int:
        return os.fstat(self.fd).st_blocks * 512

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        super().close()

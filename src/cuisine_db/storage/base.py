"""The repository interface every backend offers: streamed, atomically visible objects under '/'-separated keys."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from datetime import datetime, timedelta
    from types import TracebackType

from cuisine_db.errors import UnavailableError

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]*$")


class RepositoryError(UnavailableError):
    """The repository cannot be reached or operated (exit 3)."""


class ObjectMissing(RepositoryError):
    """An object the caller expected is not in the repository."""


class ObjectExists(RepositoryError):
    """A create-only write found an object already stored under that key."""


class RepositoryFull(RepositoryError):
    """The repository's storage has no room left."""


def check_key(key: str) -> str:
    """Keys are relative, '/'-separated, without '..', empty or hidden segments (temporary names are hidden)."""
    parts = key.split("/")
    if not key or any(not _SEGMENT.match(part) or part in (".", "..") for part in parts):
        raise ValueError(f"bad repository key {key!r}")
    return key


class ObjectInfo(NamedTuple):
    """One stored object as a listing sees it.

    A NamedTuple rather than a frozen dataclass, like the other records on the WAL archiving path: PostgreSQL starts
    `wal push` once per segment, and importing dataclasses (with inspect) costs 7 ms of its CPU each time, while
    typing is imported anyway (by zstandard)."""

    key: str
    size: int
    modified: datetime


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


class ObjectWriter(ABC):
    """A new object being written: invisible under its key until commit(), gone after abort()."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.size = 0
        self.done = False

    @abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append bytes; raise RepositoryError (RepositoryFull when out of space) on failure."""

    @abstractmethod
    def _commit(self, overwrite: bool) -> None: ...

    @abstractmethod
    def _abort(self) -> None: ...

    def commit(self, *, overwrite: bool = True) -> None:
        """Make the object visible under its key in one step; with overwrite=False, refuse an existing one."""
        if self.done:
            raise RuntimeError(f"{self.key}: already committed or aborted")
        try:
            self._commit(overwrite)
        except BaseException:
            self.abort()
            raise
        self.done = True

    def abort(self) -> None:
        """Forget what was written; safe to call more than once."""
        if not self.done:
            self.done = True
            self._abort()

    def flush(self) -> None:  # noqa: B027 - a deliberate no-op for file-like callers
        """File-like no-op: data reaches storage on write and commit."""

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # Leaving without commit (an exception, or a forgotten commit) never leaves a visible object.
        self.abort()


class Repository(ABC):
    """A place for backup objects. Writes are streamed (no full-size temporary copies) and atomically visible."""

    url: str

    @abstractmethod
    def open_write(self, key: str) -> ObjectWriter:
        """Start a new object; nothing is visible under `key` until the writer commits."""

    @abstractmethod
    def open_read(self, key: str) -> Readable:
        """Stream an object's bytes; ObjectMissing when there is none."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """The object's size and time, or None when it does not exist."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Committed objects whose key starts with `prefix`, in key order."""

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Remove objects; keys that do not exist are ignored."""

    @abstractmethod
    def cleanup(self, older_than: timedelta) -> int:
        """Remove traces of writes abandoned longer ago than `older_than` (killed runs); return how many."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def keys(self, prefix: str = "") -> Iterator[str]:
        """The keys list() would give, without sizes and times (a backend may skip fetching them)."""
        return (info.key for info in self.list(prefix))

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool = True) -> None:
        with self.open_write(key) as writer:
            writer.write(data)
            writer.commit(overwrite=overwrite)

    def get_bytes(self, key: str) -> bytes:
        reader = self.open_read(key)
        try:
            chunks = []
            while chunk := reader.read(1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            reader.close()

    def __str__(self) -> str:
        return self.url

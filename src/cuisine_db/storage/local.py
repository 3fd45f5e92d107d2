"""A repository in a local directory: objects are written under a hidden temporary name, synced, then renamed.

On the WAL archiving path (one process per segment): datetime and shutil are imported where they are used.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cuisine_db.storage.base import (
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    ObjectWriter,
    Readable,
    Repository,
    RepositoryError,
    RepositoryFull,
    check_key,
)

if TYPE_CHECKING:
    from datetime import timedelta

_TEMP_MARK = ".tmp-"


def _fail(repository: LocalRepository, key: str, exc: OSError) -> RepositoryError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return RepositoryFull(
            f"repository {repository.url} is full: no space left on device while writing {key}",
            hint="free space or point the environment's backup.repository elsewhere; earlier backups are intact",
        )
    return RepositoryError(f"repository {repository.url}: cannot write {key}: {exc.strerror or exc}")


class _LocalWriter(ObjectWriter):
    def __init__(self, repository: LocalRepository, key: str) -> None:
        super().__init__(key)
        self.repository = repository
        self.final = repository.path(key)
        self.folder = self.final.parent
        try:
            private_folders(self.folder)
            self.temp = self.folder / f".{self.final.name}{_TEMP_MARK}{os.getpid()}-{os.urandom(4).hex()}"
            self.fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _fail(repository, key, exc) from None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except OSError as exc:
            raise _fail(self.repository, self.key, exc) from None
        self.size += len(data)
        return len(data)

    def _commit(self, overwrite: bool) -> None:
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            if overwrite:
                os.replace(self.temp, self.final)
            else:
                # link() refuses an existing name, which rename() would silently replace.
                try:
                    os.link(self.temp, self.final)
                except FileExistsError:
                    raise ObjectExists(f"repository {self.repository.url}: {self.key} already exists") from None
                os.unlink(self.temp)
            _sync_folder(self.folder)
        except OSError as exc:
            raise _fail(self.repository, self.key, exc) from None

    def _abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


def private_folders(folder: Path) -> None:
    """Create `folder` and each missing folder above it 0700 (pathlib gives the parents 0777 less the umask): a
    repository is its writer's alone; the server users reach their WAL areas through ACL entries (wal enable)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder == folder.parent:
            break
        folder = folder.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalRepository(Repository):
    """Objects as files under a root folder; keys map to relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def open_write(self, key: str) -> ObjectWriter:
        return _LocalWriter(self, key)

    def open_read(self, key: str) -> Readable:
        try:
            return self.path(key).open("rb", buffering=0)
        except FileNotFoundError:
            raise ObjectMissing(f"repository {self.url}: {key} is missing") from None
        except OSError as exc:
            raise RepositoryError(f"repository {self.url}: cannot read {key}: {exc.strerror}") from None

    def stat(self, key: str) -> ObjectInfo | None:
        from datetime import UTC, datetime

        try:
            info = self.path(key).stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(key, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        from datetime import UTC, datetime

        found: list[ObjectInfo] = []
        for key in self.keys(prefix):
            with contextlib.suppress(FileNotFoundError):
                info = os.stat(self.root / key)
                found.append(ObjectInfo(key, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC)))
        yield from found

    def keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        start = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        found: list[str] = []
        for folder, subfolders, files in os.walk(start):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue  # temporary names of writes in progress (or killed)
                key = (Path(folder) / name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        yield from sorted(found)

    def delete(self, keys: Iterable[str]) -> None:
        folders = set()
        for key in keys:
            path = self.path(key)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            folders.add(path.parent)
        # Remove folders left empty (a deleted backup), never the root.
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            while folder != self.root and folder.is_relative_to(self.root):
                try:
                    folder.rmdir()
                except OSError:
                    break
                folder = folder.parent

    def cleanup(self, older_than: timedelta) -> int:
        if not self.root.is_dir():
            return 0
        limit = time.time() - older_than.total_seconds()
        removed = 0
        for folder, _, files in os.walk(self.root):
            for name in files:
                path = Path(folder) / name
                if name.startswith(".") and _TEMP_MARK in name:
                    with contextlib.suppress(FileNotFoundError):
                        if path.stat().st_mtime < limit:
                            path.unlink()
                            removed += 1
        return removed

    def free_bytes(self) -> int | None:
        """Free space where objects go (None when the root does not exist yet)."""
        import shutil

        target = self.root
        while not target.exists():
            if target == target.parent:
                return None
            target = target.parent
        return shutil.disk_usage(target).free

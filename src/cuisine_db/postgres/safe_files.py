"""Files the tool writes where someone else could have planted a link: a laid-down data directory (its content came
from a repository), a scratch folder, or a folder the server's OS user owns.

Every name is opened relative to a descriptor of its folder, with `O_NOFOLLOW` (a symlink is refused, never
followed), created with `O_CREAT|O_EXCL` (a name already there is removed first: unlinking removes a link
itself, never its target), born with its final mode, and given to its owner with `fchown` on the open
descriptor, so nothing can be swapped between the check and the write.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

from cuisine_db.errors import RefusedError

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_READ = 16 << 20  # configuration files and maps: anything larger is not one


class UnsafeFileError(RefusedError):
    """A path the tool was about to write or read is a link, a device or a folder: refused (exit 4)."""


def _name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UnsafeFileError(f"{name!r} is not a plain file name")
    return name


@contextlib.contextmanager
def folder(path: Path) -> Iterator[int]:
    """A descriptor of `path`, which must be a real folder (not a link to one)."""
    try:
        fd = os.open(path, _DIRECTORY)
    except OSError as exc:
        raise UnsafeFileError(f"{path} is not a folder the tool can write into safely ({exc.strerror})") from None
    try:
        yield fd
    finally:
        os.close(fd)


def owner_ids(user: str | None) -> tuple[int, int] | None:
    """(uid, gid) of an OS user, or None for "leave it ours"."""
    if user is None:
        return None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def write(path: Path, data: bytes | str, *, mode: int = 0o600, owner: str | None = None) -> None:
    """Create `path` afresh with `data` (see create()), flushed to disk."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    with create(path, mode=mode, owner=owner) as fd:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)


@contextlib.contextmanager
def create(path: Path, *, mode: int = 0o600, owner: str | None = None) -> Iterator[int]:
    """A new file at `path` (whatever name was there goes first), open for writing as a descriptor, owned and
    moded from the start; for streams too large to hold in memory."""
    name = _name(path.name)
    with folder(path.parent) as parent:
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        if info is not None:
            if stat.S_ISDIR(info.st_mode):
                raise UnsafeFileError(f"{path} is a folder where the tool writes a file")
            os.unlink(name, dir_fd=parent)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
    try:
        os.fchmod(fd, mode)
        ids = owner_ids(owner)
        if ids is not None:
            os.fchown(fd, *ids)
        yield fd
    finally:
        os.close(fd)


def read(path: Path, *, limit: int = MAX_READ) -> bytes | None:
    """A regular file's bytes, read without following a link (None when absent); a link, a device or a file
    larger than `limit` is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnsafeFileError(f"{path} cannot be read safely ({exc.strerror}): a link or not a file") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise UnsafeFileError(f"{path} is {info.st_size} bytes, more than the {limit} such a file may hold")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            if sum(map(len, chunks)) > limit:
                raise UnsafeFileError(f"{path} grew past {limit} bytes while it was read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    """Remove a name (a file or a link, never what a link points at); absent is fine."""
    with folder(path.parent) as parent, contextlib.suppress(FileNotFoundError):
        os.unlink(_name(path.name), dir_fd=parent)

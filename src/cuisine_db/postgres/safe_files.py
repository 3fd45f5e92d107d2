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
import stat
from collections.abc import Iterator
from pathlib import Path

# The primitives live in the records module (under the adapters, beside every other state file's writer).
from cuisine_db.records import UnsafeFileError as UnsafeFileError
from cuisine_db.records import folder as folder
from cuisine_db.records import open_new, write_all
from cuisine_db.records import owner_ids as owner_ids
from cuisine_db.records import plain_name as _name

MAX_READ = 16 << 20  # configuration files and maps: anything larger is not one


def write(path: Path, data: bytes | str, *, mode: int = 0o600, owner: str | None = None) -> None:
    """Create `path` afresh with `data` (see create()), flushed to disk."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    with create(path, mode=mode, owner=owner) as fd:
        write_all(fd, body)
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
        fd = open_new(parent, name, mode=mode, owner=owner)
    try:
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

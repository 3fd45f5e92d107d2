"""Writing a base backup's tar members straight into their folder, without `tar -x`: each plain byte is copied once,
into its file, instead of three times (into a pipe, out of it, into the file); docs/benchmarks.md, stop 19.

Only what TarGuard let through arrives here (regular files and folders with names that stay in the folder; the
tablespace links are made by laydown.py afterwards). Every name is opened relative to its folder's descriptor,
never through a link (`O_NOFOLLOW`, a folder opened with `O_DIRECTORY`), a file is created with `O_EXCL` (a name
already there is removed first: unlinking removes a link itself, never its target), born with its final mode (the
member's, never more than 0640 for a file or 0750 for a folder) and given to the server's user on its descriptor,
as postgres/safe_files.py does for every other file written into a data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from cuisine_db.records import folder as open_folder
from cuisine_db.records import open_new, owner_ids, plain_name, write_all

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class TarFiles:
    """The members of one tar stream, written under `root` for `owner` (None: left ours)."""

    def __init__(self, root: Path, owner: str | None) -> None:
        self.ids = owner_ids(owner)
        with open_folder(root) as fd:
            self.folders = {"": os.dup(fd)}
        self.fd = -1
        self.left = 0
        self.mtime = 0

    def folder(self, name: str, mode: int = 0o700) -> int:
        """A descriptor of the folder `name` (relative, `/`-separated), made (and given to the owner) if missing."""
        found = self.folders.get(name)
        if found is not None:
            return found
        parent_name, _, last = name.rpartition("/")
        parent = self.folder(parent_name)
        made = True
        try:
            os.mkdir(plain_name(last), mode & 0o750, dir_fd=parent)
        except FileExistsError:
            made = False
        fd = os.open(last, _FOLDER, dir_fd=parent)  # a link planted there: refused (ELOOP or ENOTDIR)
        if made and self.ids is not None:
            os.fchown(fd, *self.ids)
        self.folders[name] = fd
        return fd

    def file(self, name: str, mode: int, size: int, mtime: int) -> None:
        """Start the file `name`; its `size` bytes follow through write()."""
        self._end()
        parent_name, _, last = name.rpartition("/")
        parent = self.folder(parent_name)
        mode &= 0o640
        try:
            self.fd = open_new(parent, last, mode=mode, owner=self.ids)
        except FileExistsError:
            os.unlink(last, dir_fd=parent)  # (a folder there: IsADirectoryError, the restore stops)
            self.fd = open_new(parent, last, mode=mode, owner=self.ids)
        self.left = size
        self.mtime = mtime
        if not size:
            self._end()

    def write(self, data: memoryview) -> None:
        """The current member's data with its padding: the file takes what is its own."""
        take = min(self.left, len(data))
        if take:
            write_all(self.fd, data[:take])
            self.left -= take
            if not self.left:
                self._end()

    def _end(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                os.utime(fd, ns=(self.mtime * 1_000_000_000,) * 2)
            finally:
                os.close(fd)

    def close(self) -> None:
        """Every descriptor closed (a file cut short stays as it is: the lay-down fails and is removed)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for fd in self.folders.values():
            os.close(fd)
        self.folders.clear()

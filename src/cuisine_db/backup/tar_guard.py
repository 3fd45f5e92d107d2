"""Checking a backup's tar members before anything of them is written: only what pg_basebackup writes gets through.

pg_basebackup writes plain ustar members: regular files, folders, and in base.tar the `pg_tblspc/<oid>` links of
the cluster's tablespaces. A forged backup could carry links (`backup_manifest -> /etc/cron.d/x`), hard links,
devices, GNU or pax extension headers that rename or resize the member after them, or names that climb out of
the folder. Each header is parsed before a byte of its member is written (by tar_files.py, or passed on to a
stream), and the first member that is not one of pg_basebackup's is refused: nothing of it is written, and the
restore stops with the member named (exit 4).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cuisine_db.errors import RefusedError

if TYPE_CHECKING:
    from cuisine_db.backup.tar_files import TarFiles

BLOCK = 512
_REGULAR = (b"0", b"\0")
_FOLDER = b"5"
_SYMLINK = b"2"
_TABLESPACE_LINK = re.compile(r"^pg_tblspc/([1-9][0-9]{0,9})/?$")


class UnsafeMemberError(RefusedError):
    """A backup's tar holds a member pg_basebackup never writes (a link, a device, a name leaving the folder)."""


def _number(field: bytes, member: str, what: str) -> int:
    if field[:1] and field[0] & 0x80:
        if field[0] != 0x80:
            raise UnsafeMemberError(f"tar member {member!r} has a negative {what}")
        return int.from_bytes(field[1:], "big")
    text = field.strip(b" \0")
    if text and not re.fullmatch(rb"[0-7]+", text):
        raise UnsafeMemberError(f"tar member {member!r} has an unreadable {what} field")
    return int(text or b"0", 8)


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _relative(clean: str, shown: str, source: str, *, folder: bool = False) -> str:
    """A checked member name as TarFiles takes it: its parts joined by one `/`, without `.` parts; only a folder may
    name the top itself."""
    name = "/".join(part for part in clean.split("/") if part not in ("", "."))
    if not name and not folder:
        raise UnsafeMemberError(f"{source}: tar member {shown!r} is a file without a name")
    return name


class TarGuard:
    """A writable stream that passes a tar archive on to `out` after checking every header it holds, or with `files`
    writes the members it lets through into their folder itself (tar_files.py; `out` is then unused).

    `links` are the tablespace OIDs whose `pg_tblspc/<oid>` link may appear (those the manifest lists as
    `<oid>.tar`); `members` collects the names seen, `tablespace_links` the OIDs of the links let through."""

    def __init__(self, out: Any, source: str, links: frozenset[str] = frozenset(),
                 files: TarFiles | None = None) -> None:
        self.out = out
        self.source = source
        self.links = links
        self.files = files
        self.header = b""
        self.remaining = 0  # bytes of the current member's data (with padding) still to pass through
        self.tablespace_links: set[str] = set()

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            if self.remaining:
                take = min(self.remaining, len(view))
                if self.files is not None:
                    self.files.write(view[:take])
                else:
                    self.out.write(view[:take])
                self.remaining -= take
                view = view[take:]
                continue
            need = BLOCK - len(self.header)
            self.header += bytes(view[:need])
            view = view[need:]
            if len(self.header) == BLOCK:
                header, self.header = self.header, b""
                self._check(header)
                if self.files is None:
                    self.out.write(header)
        return len(data)

    def flush(self) -> None:
        if self.files is None:
            self.out.flush()

    def _check(self, header: bytes) -> None:
        if header == bytes(BLOCK):
            return  # end-of-archive blocks and pg_basebackup's padding: tar reads past them (--ignore-zeros)
        name = _text(header[0:100])
        if header[257:263] == b"ustar\0" and header[345]:
            name = _text(header[345:500]) + "/" + name
        shown = name[:120]
        stored = header[148:156].strip(b" \0")
        blanked = header[:148] + b" " * 8 + header[156:]
        signed = sum(b - 256 if b > 127 else b for b in blanked)
        if not re.fullmatch(rb"[0-7]+", stored or b"x") or int(stored, 8) not in (sum(blanked), signed):
            raise UnsafeMemberError(f"{self.source}: a tar header after {shown!r} is damaged (bad checksum): "
                                    "refused rather than let tar search for the next one")
        kind = header[156:157]
        size = _number(header[124:136], shown, "size")
        clean = name[2:] if name.startswith("./") else name
        parts = clean.split("/")
        if not clean or clean.startswith("/") or ".." in parts or "\\" in clean:
            raise UnsafeMemberError(f"{self.source}: tar member {shown!r} leaves the folder it is extracted into")
        if kind in _REGULAR:
            self.remaining = -(-size // BLOCK) * BLOCK
            if self.files is not None:
                self.files.file(_relative(clean, shown, self.source), _number(header[100:108], shown, "mode"), size,
                                _number(header[136:148], shown, "mtime"))
            return
        if kind == _FOLDER and size == 0:
            if self.files is not None and _relative(clean, shown, self.source, folder=True):
                self.files.folder(_relative(clean, shown, self.source, folder=True),
                                  _number(header[100:108], shown, "mode"))
            return
        if kind == _SYMLINK and size == 0:
            found = _TABLESPACE_LINK.match(clean)
            if found and found[1] in self.links:
                self.tablespace_links.add(found[1])
                return
            raise UnsafeMemberError(f"{self.source}: tar member {shown!r} is a symbolic link to "
                                    f"{_text(header[157:257])[:120]!r}: a backup's files are never links (only "
                                    "pg_tblspc/<oid> of a tablespace the manifest lists)")
        what = {b"1": "a hard link", b"3": "a character device", b"4": "a block device", b"6": "a FIFO",
                b"x": "a pax extended header", b"g": "a pax global header", b"L": "a GNU long name",
                b"K": "a GNU long link", b"S": "a GNU sparse file"}.get(kind, f"of type {kind!r}")
        raise UnsafeMemberError(f"{self.source}: tar member {shown!r} is {what}: pg_basebackup never writes one")

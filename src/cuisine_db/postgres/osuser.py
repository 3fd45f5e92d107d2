"""Running servers as an unprivileged OS user when the tool itself runs as root (PostgreSQL refuses root)."""

from __future__ import annotations

import errno
import os
import pwd
import stat
import struct
import subprocess
from pathlib import Path

from cuisine_db.errors import UnavailableError

FALLBACK_USER = "cuisine-db"


def server_user(configured: str | None) -> str | None:
    """The OS user servers run as: None when we are not root (the server runs as us)."""
    if os.geteuid() != 0:
        return None
    for candidate in [configured] if configured else ["postgres", FALLBACK_USER]:
        try:
            pwd.getpwnam(candidate)
            return candidate
        except KeyError:
            continue
    name = configured or FALLBACK_USER
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise UnavailableError(
            f"cannot create OS user {name!r} to run PostgreSQL: {result.stderr.strip()}",
            hint="create an unprivileged user and name it as server_user in cuisine-db.toml",
        )
    return name


def give_to(path: Path, user: str | None, mode: int = 0o700) -> None:
    """Make a directory (not its contents) belong to the server user with the given mode."""
    path.mkdir(parents=True, exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)


def make_reachable(path: Path, user: str | None) -> list[Path]:
    """Let the server user pass (search, never list) every ancestor it cannot pass yet; return what changed.

    The server chdirs into its data directory and the archive command runs this tool's Python, which is often an
    interpreter under root's home (pyenv): each folder on the way must be searchable by that user. The grant is
    a POSIX ACL entry for that one user (`u:<user>:--x`), so no other user gains anything: root's home never
    becomes traversable for others. Only on a file system without ACLs is the execute bit for others added.
    """
    if user is None:
        return []
    entry = pwd.getpwnam(user)
    changed: list[Path] = []
    for folder in reversed(path.resolve().parents):
        info = folder.stat()
        if info.st_uid == entry.pw_uid or info.st_mode & stat.S_IXOTH:
            continue
        if info.st_gid == entry.pw_gid and info.st_mode & stat.S_IXGRP:
            continue
        if _acl_grants_search(folder, entry.pw_uid):
            continue
        if not _grant_search(folder, entry.pw_uid, info.st_mode):
            folder.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
        changed.append(folder)
    return changed


_ACL = "system.posix_acl_access"
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_NO_ID = 0xFFFFFFFF


def _acl_entries(folder: Path) -> list[tuple[int, int, int]] | None:
    try:
        raw = os.getxattr(folder, _ACL)
    except OSError:
        return None
    if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != 2:
        return None
    return [struct.unpack_from("<HHI", raw, offset) for offset in range(4, len(raw) - 7, 8)]


def _acl_grants_search(folder: Path, uid: int) -> bool:
    entries = _acl_entries(folder) or []
    mask = next((perm for tag, perm, _ in entries if tag == _MASK), 7)
    return any(tag == _USER and ident == uid and perm & mask & 1 for tag, perm, ident in entries)


def _grant_search(folder: Path, uid: int, mode: int) -> bool:
    """Add `u:<uid>:--x` to the folder's ACL (kept otherwise as it is); False when the file system has none."""
    entries = _acl_entries(folder) or [(_USER_OBJ, (mode >> 6) & 7, _NO_ID), (_GROUP_OBJ, (mode >> 3) & 7, _NO_ID),
                                       (_OTHER, mode & 7, _NO_ID)]
    kept = [(tag, perm, ident) for tag, perm, ident in entries if not (tag == _USER and ident == uid)]
    named = [perm for tag, perm, _ in kept if tag in (_USER, _GROUP)]
    group = next(perm for tag, perm, _ in kept if tag == _GROUP_OBJ)
    old_mask = next((perm for tag, perm, _ in kept if tag == _MASK), None)
    mask = (old_mask if old_mask is not None else group | _or(named)) | 1
    kept = [item for item in kept if item[0] != _MASK] + [(_USER, 1, uid), (_MASK, mask, _NO_ID)]
    kept.sort(key=lambda item: (item[0], item[2]))
    data = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *item) for item in kept)
    try:
        os.setxattr(folder, _ACL, data)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return False
        raise
    return True


def _or(values: list[int]) -> int:
    result = 0
    for value in values:
        result |= value
    return result

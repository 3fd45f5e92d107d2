"""Running servers as an unprivileged OS user when the tool itself runs as root (PostgreSQL refuses root)."""

from __future__ import annotations

import os
import pwd
import stat
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
    """Grant search permission on every ancestor the server user cannot pass; return what changed.

    The server chdirs into its data directory, so each parent folder must be searchable by its user.
    Only the execute bit for others is added, never read: nothing becomes listable.
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
        folder.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
        changed.append(folder)
    return changed

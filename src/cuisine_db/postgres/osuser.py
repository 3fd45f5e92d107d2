"""Running servers as an unprivileged OS user when the tool itself runs as root (PostgreSQL refuses root)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pwd
import stat
import struct
import subprocess
import threading
from pathlib import Path

from cuisine_db.errors import UnavailableError
from cuisine_db.waiting import retry

USER_PREFIX = "cuisine-"
# Where the environments' users get their homes: `wal push`/`fetch` keep their settings cache there (~/.cache).
HOMES = Path("/var/lib/cuisine-db/users")
_NAME_LIMIT = 32  # useradd's longest name


def env_user_name(env: str) -> str:
    """The OS user an environment's servers run as unless cuisine-db.toml names one: `cuisine-<env>`, shortened with
    a digest when the name would pass useradd's limit (environment names may be 31 characters)."""
    name = USER_PREFIX + env
    if len(name) <= _NAME_LIMIT:
        return name
    digest = hashlib.sha256(env.encode()).hexdigest()[:8]
    return f"{name[:_NAME_LIMIT - 9]}-{digest}"


def owner_of(path: Path) -> str | None:
    """The name of the user owning `path` (not root, not a link), or None."""
    try:
        info = path.lstat()
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode) or info.st_uid == 0:
        return None
    try:
        return pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        return None


def ensure_user(name: str) -> str:
    """The unprivileged OS user `name`, created (a system user, no login shell, a home of its own under HOMES)
    when it does not exist yet; only root calls this."""
    with contextlib.suppress(KeyError):
        pwd.getpwnam(name)
        return name
    HOMES.mkdir(parents=True, exist_ok=True, mode=0o755)

    def created() -> str:
        result = subprocess.run(
            ["useradd", "--system", "--user-group", "--create-home", "--home-dir", str(HOMES / name),
             "--shell", "/usr/sbin/nologin", "--comment", "cuisine-db server user", name],
            capture_output=True, text=True, check=False,
        )
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
        raise _NotCreated(result.stderr.strip())

    try:  # two commands may create it at once: useradd then finds it locked or already there
        return retry(created, on=(_NotCreated,), attempts=20, pause=0.1, growth=1)
    except _NotCreated as failure:
        raise UnavailableError(
            f"cannot create OS user {name!r} to run PostgreSQL: {failure}",
            hint="create an unprivileged user and name it as the environment's os_user in cuisine-db.toml",
        ) from None


class _NotCreated(Exception):
    """useradd did not leave the user behind (its stderr)."""


def give_to(path: Path, user: str | None, mode: int = 0o700) -> None:
    """Make a directory (not its contents) belong to the server user with the given mode."""
    path.mkdir(parents=True, exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)


def own_home(home: Path, user: str | None) -> None:
    """A server's folder (data/, run/, its spool and credentials): root's and 0700, passable (never listable) by
    its server user alone through an ACL entry, so no other environment's user can even reach a name in it."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    make_reachable(home / "run", user)


def make_reachable(path: Path, user: str | None) -> list[Path]:
    """Let the server user pass (search, never list) every ancestor it cannot pass yet; return what changed.

    The server chdirs into its data directory and the archive command runs this tool's Python, which is often an
    interpreter under root's home (pyenv): each folder on the way must be searchable by that user. The grant is
    a POSIX ACL entry for that one user (`u:<user>:--x`), so no other user gains anything: root's home never
    becomes traversable for others. A file system without ACLs is refused: the tool never adds o+x.
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
        if not _set_entry(folder, entry.pw_uid, 1, info.st_mode):
            raise UnavailableError(f"{folder} has no POSIX ACLs: OS user {user} cannot be let through it alone",
                                   hint="keep the project, the cache and the interpreter on a file system with ACLs "
                                        "(ext4, xfs, btrfs, tmpfs), or in folders every user may pass")
        changed.append(folder)
    return changed


def grant_read(tree: Path, user: str | None, seen: set[Path] | None = None) -> list[Path]:
    """Let `user` read the folders and files under `tree` as they are now (an ACL entry for that user alone, links
    never followed); what changed, for revoke(). A cross-environment restore reads another environment's WAL
    archive this way, for as long as its recovery runs. Paths in `seen` are passed over, and every path looked at
    is added to it: a second call grants only what appeared since (KeptReadGrant)."""
    if user is None or not tree.is_dir():
        return []
    uid = pwd.getpwnam(user).pw_uid
    changed: list[Path] = []
    for folder, folders, files in os.walk(tree):
        for path, perm in [(Path(folder), 5), *((Path(folder) / name, 4) for name in files)]:
            if seen is not None:
                if path in seen:
                    continue
                seen.add(path)
            try:  # the archive command may rename or remove names meanwhile (a push's temporary name)
                info = path.lstat()
                if info.st_uid == uid or not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                    continue
                if not _set_entry(path, uid, perm, info.st_mode):
                    raise UnavailableError(f"{path} has no POSIX ACLs: OS user {user} cannot be let read it alone")
            except FileNotFoundError:
                continue
            changed.append(path)
        folders[:] = [name for name in folders if not (Path(folder) / name).is_symlink()]
    return changed


class KeptReadGrant:
    """grant_read() kept current while the block runs: the source environment's archive command keeps adding
    segments, records and folders (as its own user, 0600) after a cross-environment restore began, and its
    recovery must read those too. A thread grants what appeared every `interval` seconds; on the way out it stops
    and everything granted is taken back. (Default ACLs cannot do this: a file created 0600 gets an ACL mask that
    cancels any named-user entry it inherits.)"""

    def __init__(self, trees: list[Path], user: str | None, interval: float = 0.5) -> None:
        self.trees, self.user, self.interval = trees, user, interval
        self.granted: list[Path] = []
        self.seen: set[Path] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._keep, name="read-grant", daemon=True)

    def sweep(self) -> None:
        for tree in self.trees:
            self.granted += grant_read(tree, self.user, self.seen)

    def _keep(self) -> None:
        while not self.stop.wait(self.interval):
            with contextlib.suppress(OSError):  # a folder renamed or removed meanwhile: the next sweep sees it
                self.sweep()

    def __enter__(self) -> KeptReadGrant:
        self.sweep()
        if self.user is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        revoke(self.granted, self.user)


def revoke(paths: list[Path], user: str | None) -> None:
    """Take back what grant_read() or make_reachable() gave `user` on these paths (absent ones are skipped)."""
    if user is None:
        return
    uid = pwd.getpwnam(user).pw_uid
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            _drop_entry(path, uid)


_ACL = "system.posix_acl_access"
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_NO_ID = 0xFFFFFFFF


def _acl_entries(path: Path) -> list[tuple[int, int, int]] | None:
    try:
        raw = os.getxattr(path, _ACL, follow_symlinks=False)
    except OSError:
        return None
    if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != 2:
        return None
    return [struct.unpack_from("<HHI", raw, offset) for offset in range(4, len(raw) - 7, 8)]


def _acl_grants_search(folder: Path, uid: int) -> bool:
    entries = _acl_entries(folder) or []
    mask = next((perm for tag, perm, _ in entries if tag == _MASK), 7)
    return any(tag == _USER and ident == uid and perm & mask & 1 for tag, perm, ident in entries)


def _write_acl(path: Path, entries: list[tuple[int, int, int]]) -> bool:
    entries = sorted(entries, key=lambda item: (item[0], item[2]))
    data = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *item) for item in entries)
    try:
        os.setxattr(path, _ACL, data, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return False
        raise
    return True


def _base_entries(mode: int) -> list[tuple[int, int, int]]:
    return [(_USER_OBJ, (mode >> 6) & 7, _NO_ID), (_GROUP_OBJ, (mode >> 3) & 7, _NO_ID), (_OTHER, mode & 7, _NO_ID)]


def _set_entry(path: Path, uid: int, perm: int, mode: int) -> bool:
    """Add `u:<uid>:<perm>` to the ACL (kept otherwise as it is); False when the file system has none."""
    entries = _acl_entries(path) or _base_entries(mode)
    kept = [(tag, bits, ident) for tag, bits, ident in entries if not (tag == _USER and ident == uid)]
    named = [bits for tag, bits, _ in kept if tag in (_USER, _GROUP)]
    group = next(bits for tag, bits, _ in kept if tag == _GROUP_OBJ)
    old_mask = next((bits for tag, bits, _ in kept if tag == _MASK), None)
    mask = (old_mask if old_mask is not None else group | _or(named)) | perm
    return _write_acl(path, [item for item in kept if item[0] != _MASK] + [(_USER, perm, uid), (_MASK, mask, _NO_ID)])


def _drop_entry(path: Path, uid: int) -> None:
    """Remove `u:<uid>:...`; with no named entry left the ACL becomes the plain mode again (the group keeps its own
    bits, not the mask's)."""
    entries = _acl_entries(path)
    if not entries or not any(tag == _USER and ident == uid for tag, _, ident in entries):
        return
    kept = [(tag, bits, ident) for tag, bits, ident in entries if not (tag == _USER and ident == uid)]
    if not any(tag in (_USER, _GROUP) for tag, _, _ in kept):
        kept = [item for item in kept if item[0] != _MASK]
    _write_acl(path, kept)


def _or(values: list[int]) -> int:
    result = 0
    for value in values:
        result |= value
    return result

"""A cache of the few settings `wal push` and `wal fetch` take from cuisine-db.toml.

PostgreSQL runs the archive command once per 16 MB segment; importing tomllib and parsing the file cost about 5 ms
of each call's CPU. The settings the archive needs (state_dir and the environment's backup and wal tables, the
keys listed below and nothing else) are kept as JSON in the OS user's own cache folder
(`~/.cache/cuisine-db/`, the folder 0700, the file 0600, both owned by the user), under a name derived from the
configuration's path and environment, stamped with the file's device, inode, size and modification and change
times. A cache that is missing, stale, not the user's own, open to others or damaged is ignored and rewritten:
the file is then parsed as before. It holds no secrets: S3 keys are read from the environment or the
credentials file on every call, and the age recipients from their key file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

VERSION = 2  # 2: the signing keys (issue 15)
BACKUP_KEYS = ("repository", "s3_endpoint", "s3_region", "s3_access_key_env", "s3_secret_key_env", "recipients",
               "identity_file", "identity_env", "compress_level", "signing_key_file", "signing_key_env",
               "trusted_signers")
WAL_KEYS = ("push_batch", "push_threads", "prefetch", "fetch_threads", "spool_dir", "credentials_file")


def stamp(config_path: Path, env: str, info: os.stat_result) -> list[Any]:
    """What must be the same for a cached copy to stand for the file (taken from the open file's fstat)."""
    return [VERSION, str(config_path), env, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns,
            info.st_ctime_ns]


def _private(info: os.stat_result, kind: int) -> bool:
    return (stat.S_IFMT(info.st_mode) == kind and info.st_uid == os.geteuid()
            and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def folder() -> Path | None:
    """~/.cache/cuisine-db of this OS user ($HOME if it is the user's own, else the home in the password
    database: the archiver may have inherited another user's $HOME), created 0700; None when unusable."""
    import pwd

    homes = [os.environ.get("HOME") or "", pwd.getpwuid(os.geteuid()).pw_dir]
    for home in homes:
        try:
            if not home or os.stat(home).st_uid != os.geteuid():
                continue
            path = Path(home) / ".cache" / "cuisine-db"
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            if _private(os.lstat(path), stat.S_IFDIR):
                return path
        except OSError:
            continue
    return None


def _file(config_path: Path, env: str) -> Path | None:
    where = folder()
    if where is None:
        return None
    name = hashlib.sha256(f"{config_path}\0{env}".encode()).hexdigest()[:32]
    return where / f"wal-settings-{name}.json"


def lookup(config_path: Path, env: str, expected: list[Any]) -> dict[str, Any] | None:
    """The cached settings if they are this user's own and stamped `expected`, else None."""
    import json

    path = _file(config_path, env)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not _private(os.fstat(fd), stat.S_IFREG):
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            cached = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(cached, dict) or cached.get("stamp") != expected:
        return None
    settings = cached.get("settings")
    return settings if isinstance(settings, dict) else None


def keep(config_path: Path, env: str, expected: list[Any], settings: dict[str, Any]) -> None:
    """Best effort: write the cache (a new private file, renamed over the old one)."""
    import json

    path = _file(config_path, env)
    if path is None:
        return
    try:
        text = json.dumps({"stamp": expected, "settings": settings})
    except (TypeError, ValueError):  # a value JSON cannot hold (a TOML date): parse every time
        return
    from cuisine_db.errors import CuisineDbError
    from cuisine_db.records import atomic_write

    with contextlib.suppress(OSError, CuisineDbError):  # a cache we cannot write is parsed again next time
        atomic_write(path, text, mode=0o600)

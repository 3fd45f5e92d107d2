"""Scratch folders for one backup or restore run, the client programs it uses, and who runs it."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.postgres import binaries
from cuisine_db.postgres.binaries import PgBuild


def database_of(settings: Settings, env: Environment) -> str:
    """The database an environment's connections go to: the dsn's dbname (libpq defaults it to the user name)."""
    from cuisine_db.postgres.connect import connection_params

    params = connection_params(settings, env)
    return str(params.get("dbname") or params.get("user") or getpass.getuser())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(settings: Settings) -> None:
    """Remove scratch folders of runs that were killed (their process is gone)."""
    root = settings.state_dir / "tmp"
    if not root.is_dir():
        return
    for folder in root.iterdir():
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def scratch(settings: Settings, label: str) -> Iterator[Path]:
    """A private folder for one run, removed afterwards; a killed run's folder is swept by the next one."""
    sweep(settings)
    root = settings.state_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = root / f"{label}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)


def dump_client(settings: Settings, server_major: int) -> PgBuild:
    """pg_dump of the server's major version (or the nearest newer): its archive restores into that version."""
    return binaries.client_for(server_major, settings.cache_dir)


def restore_client(settings: Settings, dump_major: int, target_major: int) -> PgBuild:
    """pg_restore new enough to read the archive and not newer than the target server (a newer pg_restore sends
    settings an older server rejects, such as transaction_timeout)."""
    if dump_major > target_major:
        raise UsageError(
            f"this backup was written by pg_dump {dump_major} and cannot be restored into PostgreSQL {target_major}",
            hint="restore it into a server of the same or a newer major version",
        )
    candidates = [b for b in [*binaries.cached(settings.cache_dir), *binaries.system()]
                  if dump_major <= b.major <= target_major]
    if candidates:
        return max(candidates, key=lambda b: (b.major, b.source == "cache"))
    return binaries.install(target_major, settings.cache_dir)

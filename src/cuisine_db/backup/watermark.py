"""The local high-water mark of an environment's backups: the newest sequence number and backup seen here.

Kept under `<state_dir>/<env>/backup-watermark.json`, written with records.atomic_write. It is
this machine's memory, never the repository's: a signed manifest whose sequence is not above the newest one
seen while its name is newer (an older backup presented as a newer one), or one dated in the future, is not
trusted; and the next backup's sequence continues from here.

A mark that is there but cannot be read is never taken for "none" (which would turn the rollback check off): `read`
returns it as `Unreadable`, every signed backup of the environment is then untrusted with that reason, `backup
status` is red, restores refuse (exit 4) naming the file, and `save` leaves it as it is. The operator rebuilds it
with `cuisine-db backup rebuild-watermark` (backup/watermark_rebuild.py; docs/security.md).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cuisine_db import records
from cuisine_db.backup import backup_names
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError

FILE = "backup-watermark.json"


@dataclass(frozen=True, slots=True)
class Mark:
    sequence: int
    name: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A mark that is there but damaged: the rollback check cannot run for `env` until it is rebuilt."""

    env: str
    where: str
    why: str

    @property
    def problem(self) -> str:
        return (f"rollback check impossible: the high-water mark {self.where} is damaged ({self.why}); "
                f"cuisine-db backup rebuild-watermark --env {self.env} after checking (docs/security.md)")


def path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / FILE


def load(settings: Settings, env: Environment) -> Mark | None:
    """The mark, None when there is no file, DamagedRecord naming the file when it is there but damaged (not JSON,
    fields missing or mistyped, a name that is not one of env's backups, a folder, unreadable)."""
    where = path(settings, env)
    try:
        mark = records.load(Mark, where)
    except OSError as exc:
        raise records.DamagedRecord(where, f"cannot be read ({exc.strerror})", hint=_HINT.format(env.name)) from None
    except records.DamagedRecord as exc:
        raise records.DamagedRecord(where, exc.why, hint=_HINT.format(env.name)) from None
    if mark is None:
        return None
    try:
        named = backup_names.parse(mark.name)
    except UsageError:
        raise records.DamagedRecord(where, f"name {mark.name[:60]!r} is not a backup name",
                                    hint=_HINT.format(env.name)) from None
    if named.env != env.name or mark.sequence < 1 or mark.started_at.tzinfo is None:
        raise records.DamagedRecord(where, "its name, sequence or time is not one this tool writes for "
                                    f"{env.name}", hint=_HINT.format(env.name))
    return mark


_HINT = "cuisine-db backup rebuild-watermark --env {} rebuilds it after you checked the repository (docs/security.md)"


def read(settings: Settings, env: Environment) -> Mark | Unreadable | None:
    """`load`, with a damaged mark as `Unreadable` (for the catalog, which then trusts no signed backup of env)."""
    try:
        return load(settings, env)
    except records.DamagedRecord as exc:
        return Unreadable(env.name, exc.where, exc.why)


def save(settings: Settings, env: Environment, mark: Mark) -> None:
    """Raise the mark (never lower it, never overwrite a damaged one); best effort where the state folder is not
    ours to write."""
    current = read(settings, env)
    if isinstance(current, Unreadable) or (current is not None and current.sequence >= mark.sequence):
        return
    write(settings, env, mark)


def write(settings: Settings, env: Environment, mark: Mark) -> None:
    target = path(settings, env)
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        records.atomic_write(target, records.encode(mark))

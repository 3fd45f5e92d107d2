"""The local high-water mark of an environment's backups: the newest sequence number and backup seen here.

Kept under `<state_dir>/<env>/backup-watermark.json`, written with records.atomic_write. It is
this machine's memory, never the repository's: a signed manifest whose sequence is not above the newest one
seen while its name is newer (an older backup presented as a newer one), or one dated in the future, is not
trusted; and the next backup's sequence continues from here.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cuisine_db import records
from cuisine_db.config import Environment, Settings

FILE = "backup-watermark.json"


@dataclass(frozen=True, slots=True)
class Mark:
    sequence: int
    name: str
    started_at: datetime


def path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / FILE


def load(settings: Settings, env: Environment) -> Mark | None:
    try:
        body = json.loads(path(settings, env).read_text())
        return Mark(int(body["sequence"]), str(body["name"]), datetime.fromisoformat(body["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(settings: Settings, env: Environment, mark: Mark) -> None:
    """Raise the mark (never lower it); best effort where the state folder is not ours to write."""
    current = load(settings, env)
    if current is not None and current.sequence >= mark.sequence:
        return
    target = path(settings, env)
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        records.atomic_write(target, json.dumps({"sequence": mark.sequence, "name": mark.name,
                                                 "started_at": mark.started_at.isoformat()}))

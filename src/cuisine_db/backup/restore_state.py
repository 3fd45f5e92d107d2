"""What a physical restore left behind, in `<state_dir>/<env>/restore.json`: which backup was laid down, whether the
server has been opened since, and where the old data directory waits.

`laid-down`: the backup is in place and nothing has replayed or opened it; a plain start refuses (recovery.signal
without a restore_command), so only `db-apply-logs` (replay the archive) or opening it (`maintenance-mode
disable`, `cuisine-db restore open`) continue from here. `opened`: the server has promoted and may have taken
writes; `db-apply-logs` then refuses rather than lay the backup down again over them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError

STATE_FILE = "restore.json"
LAID_DOWN = "laid-down"
OPENED = "opened"


@dataclass(frozen=True, slots=True)
class RestoreState:
    env: str
    state: str
    backup: str
    chain: list[str]
    source_env: str
    system_identifier: str | None
    timeline: int | None
    stop_lsn: str | None
    stop_wal: str | None
    wal_segment_size: int
    backup_stopped_at: datetime
    laid_at: datetime
    lay_seconds: float
    kept: str | None
    cross_env: bool
    opened_at: datetime | None = None
    opened_by: str | None = None
    opened_timeline: int | None = None
    next_xid: str | None = None
    reached_lsn: str | None = None
    reached_time: datetime | None = None
    notes: list[str] = field(default_factory=list)

    def with_(self, **changes: Any) -> RestoreState:
        return replace(self, **changes)


def path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / STATE_FILE


def load(settings: Settings, env: Environment) -> RestoreState | None:
    where = path(settings, env)
    try:
        body = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise FailedError(f"{where} is damaged", hint="it records the last physical restore; remove it only if no "
                                                     "restore is half done") from None
    for name in ("backup_stopped_at", "laid_at", "opened_at", "reached_time"):
        if body.get(name):
            body[name] = datetime.fromisoformat(body[name])
    try:
        return RestoreState(**body)
    except TypeError:
        raise FailedError(f"{where} lacks fields this version needs") from None


def save(settings: Settings, env: Environment, state: RestoreState) -> None:
    where = path(settings, env)
    where.parent.mkdir(parents=True, exist_ok=True)
    body = {key: value.isoformat() if isinstance(value, datetime) else value for key, value in asdict(state).items()}
    temp = where.with_name(f".{where.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(body, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, where)


def pending(settings: Settings, env: Environment) -> RestoreState | None:
    """The restore waiting for replay or opening, if there is one."""
    state = load(settings, env)
    return state if state is not None and state.state == LAID_DOWN else None

"""What a physical restore left behind, in `<state_dir>/<env>/restore.json`: which backup was laid down, whether the
server has been opened since, and where the old data directory waits.

`laid-down`: the backup is in place and nothing has replayed or opened it; a plain start refuses (recovery.signal
without a restore_command), so only `db-apply-logs` (replay the archive) or opening it (`cuisine-db restore open`,
db-restore open=1) continue from here; `maintenance-mode disable` refuses while it waits. `opened`: the server has
promoted and may have taken writes; `db-apply-logs` then refuses rather than lay the backup down again over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cuisine_db import records
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError

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
    """The last physical restore's record, None when there is none; DamagedRecord (exit 1, naming the file) when
    it is there but damaged."""
    try:
        return records.load(RestoreState, path(settings, env))
    except records.DamagedRecord as exc:
        raise records.DamagedRecord(exc.where, exc.why, hint="it records the last physical restore; remove it only "
                                                             "if no restore is half done") from None


def save(settings: Settings, env: Environment, state: RestoreState) -> None:
    where = path(settings, env)
    where.parent.mkdir(parents=True, exist_ok=True)
    records.save(where, state)


def pending(settings: Settings, env: Environment) -> RestoreState | None:
    """The restore waiting for replay or opening, if there is one."""
    state = load(settings, env)
    return state if state is not None and state.state == LAID_DOWN else None


def refuse_while_pending(settings: Settings, env: Environment, *, stays: str = "", then: str = "") -> None:
    """Refuse what would start or open the server around a restore still laid down, naming the two ways on."""
    waiting = pending(settings, env)
    if waiting is not None:
        raise RefusedError(
            f"{env.name} holds {waiting.backup}, laid down by db-restore and not opened yet{stays}",
            hint=f"make db-apply-logs env={env.name} replays the archive onto it, or cuisine-db restore open "
                 f"--env {env.name} opens it as the backup left it{then}")

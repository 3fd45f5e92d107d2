"""The maintenance window as recorded on disk (`.cuisine/<env>/maintenance.json`): who, why, since when, and each
blocked role's previous connection limit. Kept apart from ops/maintenance.py so that explaining a refused
connection (cluster/on_demand.py) can read it without the service's imports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cuisine_db import records
from cuisine_db.config import Environment, Settings

STATE_FILE = "maintenance.json"


@dataclass(frozen=True, slots=True)
class MaintenanceState:
    """What enable recorded: why, who, since when, and each blocked role's previous connection limit."""

    env: str
    reason: str
    who: str
    since: datetime
    roles: dict[str, int]


def state_path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / STATE_FILE


def state(settings: Settings, env: Environment) -> MaintenanceState | None:
    """The recorded maintenance state, or None when maintenance mode is off; DamagedRecord (exit 1, naming the
    file) when it is there but damaged."""
    try:
        return records.load(MaintenanceState, state_path(settings, env))
    except records.DamagedRecord as exc:
        raise records.DamagedRecord(exc.where, exc.why + "; it holds the roles' previous connection limits",
                                    hint="repair it by hand (JSON: env, reason, who, since, roles) before enabling or "
                                         "disabling maintenance mode") from None


def save(path: Path, current: MaintenanceState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    records.save(path, current)

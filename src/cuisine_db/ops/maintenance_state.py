"""The maintenance window as recorded on disk (`.cuisine/<env>/maintenance.json`): who, why, since when, and each
blocked role's previous connection limit. Kept apart from ops/maintenance.py so that explaining a refused
connection (cluster/on_demand.py) can read it without the service's imports."""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError

STATE_FILE = "maintenance.json"


@dataclass(frozen=True, slots=True)
class MaintenanceState:
    """What enable recorded: why, who, since when, and each blocked role's previous connection limit."""

    env: str
    reason: str
    who: str
    since: datetime
    roles: dict[str, int]


def who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def state_path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / STATE_FILE


def state(settings: Settings, env: Environment) -> MaintenanceState | None:
    """The recorded maintenance state, or None when maintenance mode is off."""
    path = state_path(settings, env)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return MaintenanceState(env=body["env"], reason=body["reason"], who=body["who"],
                                since=datetime.fromisoformat(body["since"]),
                                roles={str(k): int(v) for k, v in body["roles"].items()})
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise FailedError(f"{path} is damaged; it holds the roles' previous connection limits",
                          hint="repair it by hand (JSON: env, reason, who, since, roles) before enabling or "
                               "disabling maintenance mode") from None


def save(path: Path, current: MaintenanceState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = asdict(current)
    body["since"] = current.since.isoformat()
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(body, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)

"""Point-in-time recovery stops at a major-version upgrade: say so, and name the backup that reaches the point.

pg_upgrade makes a new cluster with a new system identifier, whose WAL lives in its own archive area
(backup/wal/areas.py). Replay cannot cross from one to the other: a backup from before the upgrade replays only up
to it, and one from after cannot go back before it. db-apply-logs asks here first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cuisine_db.backup import catalog
from cuisine_db.backup.restore_state import RestoreState
from cuisine_db.backup.targets import RecoveryTarget
from cuisine_db.backup.wal import areas
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError

PHYSICAL = ("full", "incremental")


def _stopped(manifest: Any) -> datetime:
    stop = manifest.dump.get("stop_time")
    return datetime.fromisoformat(stop) if stop else manifest.finished_at


def _backups_of(settings: Settings, source: Environment, system: str) -> list[Any]:
    """Complete full backups of one system identifier, oldest first."""
    return [entry.manifest for entry in catalog.list_backups(settings, source)
            if entry.manifest is not None and entry.type == "full"
            and str(entry.manifest.system_identifier) == system]


def refuse_crossing(settings: Settings, env: Environment, source: Environment, state: RestoreState,
                    target: RecoveryTarget) -> None:
    """RefusedError when replaying `state`'s backup to `target` would have to cross an upgrade of `source`."""
    if state.system_identifier is None:
        return
    listed = areas.read(settings.env_dir(source))
    place = next((i for i, item in enumerate(listed)
                  if str(item.get("system_identifier")) == str(state.system_identifier)), None)
    if place is None:
        return
    mine = listed[place]
    until = datetime.fromisoformat(mine["until"]) if mine.get("until") else None
    if until is not None and place + 1 < len(listed) and (
            target.kind == "end" or (target.time is not None and target.time > until)):
        after = listed[place + 1]
        newer = _backups_of(settings, source, str(after["system_identifier"]))
        where = (f"make db-restore env=<an environment of PostgreSQL {after['major']}> backup={newer[0].name}, then "
                 "db-apply-logs" if newer else f"no full backup of PostgreSQL {after['major']} exists yet")
        raise RefusedError(
            f"{state.backup} is of PostgreSQL {mine.get('major')} (system identifier {state.system_identifier}), "
            f"upgraded to PostgreSQL {after['major']} at {until:%Y-%m-%d %H:%M:%S} UTC: its WAL ends there and "
            f"replay cannot cross into the new cluster's ({target.describe()} is after it)",
            hint=f"for a point after the upgrade: {where}; for one before it: target= before "
                 f"{until:%Y-%m-%d %H:%M:%S}+00")
    since = datetime.fromisoformat(mine["since"]) if mine.get("since") else None
    if since is not None and place > 0 and target.time is not None and target.time < since:
        before = listed[place - 1]
        older = [m for m in _backups_of(settings, source, str(before["system_identifier"]))
                 if _stopped(m) <= target.time]
        where = (f"make db-restore env=<an environment of PostgreSQL {before['major']}> backup={older[-1].name}, "
                 "then db-apply-logs with this target" if older else
                 f"no full backup of PostgreSQL {before['major']} ends before that point")
        raise RefusedError(
            f"{target.describe()} is before {source.name}'s upgrade from PostgreSQL {before.get('major')} to "
            f"{mine.get('major')} at {since:%Y-%m-%d %H:%M:%S} UTC: {state.backup} is of the new cluster and replay "
            "cannot go back across the upgrade", hint=where)

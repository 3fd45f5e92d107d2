"""One WAL archive area per system identifier: an upgraded cluster never mixes its segments with the old one's.

A cluster made by pg_upgrade has a new system identifier and starts again on timeline 1 at a low LSN, so its WAL
file names are names the old cluster's archive already holds. Each system identifier therefore archives into its
own area: `wal/<env>/` for the environment's first one (every archive made before upgrades existed), and
`wal/<env>+<system identifier>/` for each one an upgrade brings ('+' is in no environment name). The timeline
record, `<state_dir>/<env>/wal-areas.json`, lists the areas in order with their major and when each began and
ended; `wal push` archives into the current one and `wal fetch --system-id S` reads the one of S. The upgrade
writes it (before the new server first starts) and a rollback takes its entry back.

Read on the archive command's path: json and os only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RECORD = "wal-areas.json"


def area_of(env: str, system: str) -> str:
    """The area of a system identifier that an upgrade brought (not the environment's first)."""
    if not system.isdigit():
        raise ValueError(f"{system!r} is not a system identifier")
    return f"{env}+{system}"


def read(env_dir: Path) -> list[dict[str, Any]]:
    """The areas in order, oldest first; [] when the environment was never upgraded."""
    try:
        body = json.loads((env_dir / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    areas = body.get("areas") if isinstance(body, dict) else None
    if not isinstance(areas, list) or not all(isinstance(item, dict) for item in areas):
        raise ValueError(f"{env_dir / RECORD} is damaged: no list of areas")
    return areas


def current(env: str, env_dir: Path) -> str:
    """Where this environment's server archives now: the newest area (its first, wal/<env>/, before any upgrade)."""
    areas = read(env_dir)
    return str(areas[-1]["area"]) if areas else env


def area_for(env: str, env_dir: Path, system: str | None) -> str:
    """The area holding the WAL of `system`: its own if an upgrade gave it one, else the environment's first."""
    if system is None:
        return current(env, env_dir)
    for item in read(env_dir):
        if str(item.get("system_identifier")) == str(system):
            return str(item["area"])
    return env


def entry_of(env_dir: Path, system: str | None) -> dict[str, Any] | None:
    for item in read(env_dir):
        if system is not None and str(item.get("system_identifier")) == str(system):
            return item
    return None


def all_areas(env: str, env_dir: Path) -> list[str]:
    """Every area of the environment, the first one included, oldest first."""
    found = [str(item["area"]) for item in read(env_dir)]
    return found if found else [env]


def _write(env_dir: Path, areas: list[dict[str, Any]]) -> None:
    """Atomically, readable by the environment's server user (its archive command reads it); root's file."""
    target = env_dir / RECORD
    temp = target.with_name(f".{RECORD}.{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temp, flags, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps({"areas": areas}, indent=2, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def begin(env: str, env_dir: Path, *, old_system: str, old_major: int, new_system: str, new_major: int,
          at: str) -> str:
    """Record that `new_system` (the upgraded cluster) archives into its own area from `at` on; idempotent.
    The old system identifier is listed too (with the area it used), ended at `at`. Returns the new area."""
    areas = read(env_dir)
    if not any(str(item.get("system_identifier")) == old_system for item in areas):
        areas.append({"system_identifier": old_system, "area": current(env, env_dir), "major": old_major,
                      "since": None, "until": None})
    for item in areas:
        if str(item.get("system_identifier")) == old_system and item.get("until") is None:
            item["until"] = at
    area = area_of(env, new_system)
    areas = [item for item in areas if str(item.get("system_identifier")) != new_system]
    areas.append({"system_identifier": new_system, "area": area, "major": new_major, "since": at, "until": None})
    _write(env_dir, areas)
    return area


def take_back(env_dir: Path, *, old_system: str, new_system: str) -> None:
    """A rollback: the new system identifier's entry goes (its area stays in the repository, unused) and the old
    one is current again. With nothing left but the first area, the record goes."""
    areas = [item for item in read(env_dir) if str(item.get("system_identifier")) != new_system]
    for item in areas:
        if str(item.get("system_identifier")) == old_system:
            item["until"] = None
    if len(areas) <= 1 and all(item.get("since") is None for item in areas):
        (env_dir / RECORD).unlink(missing_ok=True)
    else:
        _write(env_dir, areas)

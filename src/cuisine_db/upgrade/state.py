"""The upgrade's state file, `.cuisine/<env>/upgrade/state.json`, written atomically at every phase.

Where the old and new data directories are, and which phase the run reached, is all a re-run needs after a
kill -9: before the point of no return it puts the old cluster back exactly; after it, it finishes the new one.
The major a local environment runs afterwards is recorded in `.cuisine/<env>/postgres_major` (read by
config.py), so the operator's cuisine-db.toml is never edited.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

from cuisine_db import records
from cuisine_db.config import MAJOR_FILE, Environment, Settings, recorded_major
from cuisine_db.errors import UnavailableError

R = TypeVar("R")

# In order. A run killed before `switched` leaves the old cluster as it was (link: its pg_control renamed back; swap:
# its hard-linked copy put back); from `started` on, the new cluster is the environment's.
PHASES = ("preflight", "stopped", "upgrading", "upgraded", "switched", "started", "done")


@dataclass(frozen=True, slots=True)
class UpgradeState:
    """One upgrade of an environment, from the pre-flight to --finish (or --rollback)."""

    env: str
    source: int
    target: int
    method: str
    phase: str
    maintenance_was_on: bool
    major_file_before: int | None
    started_at: str
    point_of_no_return: bool = False
    archiving: bool = False  # the old server archived WAL: the new one archives into its own area
    replicas: tuple[tuple[str, int], ...] = ()  # (name, port) of the local replicas stopped, rebuilt after
    pooler_paused: bool = False  # PgBouncer holds its clients (PAUSE) until the new server is open
    kept: bool = False  # swap: the stopped old cluster's hard-linked copy is complete (upgrade/pg<old>.kept/data)

    def at(self, phase: str) -> UpgradeState:
        return replace(self, phase=phase)

    def reached(self, phase: str) -> bool:
        return PHASES.index(self.phase) >= PHASES.index(phase)


def folder(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / "upgrade"


@dataclass(frozen=True, slots=True)
class Kept(Generic[R]):
    """One record file of a run in the environment's upgrade folder (the logical methods' state): loaded (a damaged
    one is exit 3, never taken for none), saved atomically, forgotten with the folder once it is empty."""

    name: str
    kind: type[R]

    def path(self, settings: Settings, env: Environment) -> Path:
        return folder(settings, env) / self.name

    def load(self, settings: Settings, env: Environment) -> R | None:
        try:
            return records.load(self.kind, self.path(settings, env))
        except records.DamagedRecord as exc:
            raise UnavailableError(exc.message) from None

    def save(self, settings: Settings, env: Environment, current: R) -> None:
        folder(settings, env).mkdir(parents=True, exist_ok=True)
        records.save(self.path(settings, env), current)

    def forget(self, settings: Settings, env: Environment, *, folder_too: bool = False) -> None:
        self.path(settings, env).unlink(missing_ok=True)
        if folder_too:
            with contextlib.suppress(OSError):  # the folder goes with its last record
                folder(settings, env).rmdir()


def home(settings: Settings, env: Environment, major: int) -> Path:
    """Where the cluster of `major` waits while it is not the environment's (its data/ beneath)."""
    return folder(settings, env) / f"pg{major}"


def kept(settings: Settings, env: Environment, major: int) -> Path:
    """Where swap keeps a hard-linked copy of the stopped old cluster (its data/ beneath) until the first start."""
    return folder(settings, env) / f"pg{major}.kept"


def path(settings: Settings, env: Environment) -> Path:
    return folder(settings, env) / "state.json"


def load(settings: Settings, env: Environment) -> UpgradeState | None:
    """The upgrade in progress, None when there is none; a damaged state file is DamagedRecord, naming it."""
    return records.load(UpgradeState, path(settings, env))


def save(settings: Settings, env: Environment, state: UpgradeState) -> None:
    path(settings, env).parent.mkdir(parents=True, exist_ok=True)
    records.save(path(settings, env), state)


def forget(settings: Settings, env: Environment) -> None:
    path(settings, env).unlink(missing_ok=True)


def current_major_file(settings: Settings, env: Environment) -> int | None:
    return recorded_major(settings.env_dir(env))


def record_major(settings: Settings, env: Environment, major: int | None) -> None:
    """The major every later command uses for env's cluster; None removes the record (cuisine-db.toml's holds)."""
    file = settings.env_dir(env) / MAJOR_FILE
    if major is None:
        file.unlink(missing_ok=True)
    else:
        records.atomic_write(file, f"{major}\n")

"""Placeholder replaced by the seed generator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError


@dataclass(frozen=True, slots=True)
class SeedReport:
    rows: dict[str, int]
    bytes: int
    seconds: float


def load(settings: Settings, env: Environment, *, scale: int, seed: int,
         notify: Callable[[str], None]) -> SeedReport:
    raise UsageError("seed is not built yet")

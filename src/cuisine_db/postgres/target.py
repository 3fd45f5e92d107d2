"""Where a connection goes when it does not go to the environment's primary: one of its replicas."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Target:
    """A replica as connections see it: libpq parameters that replace the primary's host and port."""

    name: str
    params: dict[str, str] = field(default_factory=dict)  # host, port, sslmode...; never user, database or password
    datadir: Path | None = None  # a local replica's data directory (db-size measures its filesystem)

    def where(self) -> str:
        return f"{self.params.get('host', '?')}:{self.params.get('port', '5432')}"

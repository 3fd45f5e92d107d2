"""The incident records as stored under `<state_dir>/incidents/` (one JSON file each, a marker in `open/` while
open) and the reading side: kept below the journal, which links each line to the open incidents (`open_ids`),
and below ops/incidents.py (the store's service) and ops/incident_report.py."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cuisine_db import records
from cuisine_db.config import Settings
from cuisine_db.errors import UsageError

SEVERITIES = {1: "critical", 2: "major", 3: "minor", 4: "low"}
_ID = re.compile(r"^INC-\d{8}-\d{2,6}$")


@dataclass(frozen=True, slots=True)
class Notification:
    """One attempt to announce an incident event on the webhook."""

    event: str  # "opened" or "resolved"
    at: str
    delivered: bool
    detail: str  # "HTTP 200", "connection refused", ... never the URL


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    severity: int
    description: str
    env: str | None  # None: every environment
    status: str  # "open" or "resolved"
    opened_at: str
    opened_by: str
    resolved_at: str | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    notifications: tuple[Notification, ...] = field(default_factory=tuple)

    @property
    def severity_name(self) -> str:
        return SEVERITIES[self.severity]

    @property
    def scope(self) -> str:
        return self.env or "all environments"

    def covers(self, env_name: str) -> bool:
        return self.env is None or self.env == env_name

    def time_to_recovery(self) -> float | None:
        """Seconds from opening to resolution; None while open."""
        if self.resolved_at is None:
            return None
        return (parse_time(self.resolved_at) - parse_time(self.opened_at)).total_seconds()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def validate_id(value: str) -> str:
    text = value.strip()
    if not _ID.match(text):
        raise UsageError(f"{value[:40]!r} is not an incident id", hint="ids look like INC-20250315-01; see: "
                                                                       "cuisine-db incident list")
    return text


def incidents_root(settings: Settings) -> Path:
    return settings.state_dir / "incidents"


def incident_path(settings: Settings, incident_id: str) -> Path:
    return incidents_root(settings) / f"{incident_id}.json"


def to_json(incident: Incident) -> dict[str, Any]:
    return asdict(incident)


def read(path: Path) -> Incident:
    """An incident's file; FileNotFoundError when it is not there, DamagedRecord naming it when it is damaged."""
    return records.decode(Incident, path.read_bytes(), path)


def get(settings: Settings, incident_id: str) -> Incident:
    path = incident_path(settings, validate_id(incident_id))
    try:
        return read(path)
    except FileNotFoundError:
        raise UsageError(f"no incident {incident_id}", hint="see: cuisine-db incident list") from None


def scan(settings: Settings) -> tuple[list[Incident], list[records.Damaged]]:
    """Every incident filed here, newest first, and the files that are there but damaged."""
    found, damaged = [], []
    root = incidents_root(settings)
    if root.is_dir():
        for path in sorted(root.glob("INC-*.json")):
            try:
                found.append(read(path))
            except records.DamagedRecord as exc:
                damaged.append(records.Damaged.of(exc))
    return sorted(found, key=lambda incident: (incident.opened_at, incident.id), reverse=True), damaged


def all_incidents(settings: Settings) -> list[Incident]:
    """Every incident filed here, newest first; DamagedRecord (naming the file) when one is damaged."""
    found, damaged = scan(settings)
    if damaged:
        raise records.DamagedRecord(damaged[0].where, damaged[0].why)
    return found


def open_ids(settings: Settings, env_name: str) -> list[str]:
    """The open incidents that cover an environment (the journal links its lines to these).

    Never raises: a damaged incident file must not stop an operator's command from running or being journaled.
    """
    markers = incidents_root(settings) / "open"
    try:
        names = sorted(os.listdir(markers))
    except OSError:
        return []
    linked = []
    for name in names:
        try:
            incident = read(incident_path(settings, name))
        except (OSError, records.DamagedRecord):
            continue  # `incident list` reports a damaged file
        if incident.status == "open" and incident.covers(env_name):
            linked.append(incident.id)
    return linked


def started_at(entry: Mapping[str, Any]) -> datetime:
    try:
        return parse_time(str(entry["at"]))
    except (KeyError, ValueError):
        return datetime.min.replace(tzinfo=UTC)

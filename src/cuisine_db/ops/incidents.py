"""Incidents: opened with a severity and a description, linked to every journaled command while open, resolved.

An incident is project-wide by default: the runbook's `make incident-create` has no `env=`, and recovering
from a database failure touches several environments (restore production, rehearse on staging), so an
incident opened without an environment links the commands of every environment; one opened with `env=`
links only that environment's commands. Each incident is one JSON file under `<state_dir>/incidents/`, and
an open one also has a marker in `incidents/open/`, so the journal finds the open ones without reading
every incident ever filed. `export()` gives everything that should survive the host as named blobs, so
copying an incident to a backup repository is one call per blob.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cuisine_db import records
from cuisine_db.config import Settings
from cuisine_db.errors import UsageError
from cuisine_db.ops import journal
from cuisine_db.whoami import who

SEVERITIES = {1: "critical", 2: "major", 3: "minor", 4: "low"}
MAX_DESCRIPTION = 500
_ID = re.compile(r"^INC-\d{8}-\d{2,6}$")
# Descriptions travel to chat webhooks, reports and operators' terminals, and get pasted into shells.
_SHELL_METACHARACTERS = "`$;|&<>\\"


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


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def validate_severity(value: str | int | None) -> int:
    text = str(value).strip() if value is not None else ""
    if not text:
        raise UsageError("severity is required", hint="severity=1 (critical), 2 (major), 3 (minor) or 4 (low)")
    if not text.isdigit() or int(text) not in SEVERITIES:
        raise UsageError(f"severity must be 1 to 4, not {text[:20]!r}",
                         hint="1 critical, 2 major, 3 minor, 4 low")
    return int(text)


def validate_text(value: str | None, what: str, *, required: bool) -> str:
    """A description or resolution note: printable, no shell metacharacters, at most MAX_DESCRIPTION characters."""
    text = (value or "").strip()
    if not text:
        if required:
            raise UsageError(f"{what} is required and must not be empty", hint=f'{what}="Database failure"')
        return ""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise UsageError(f"{what} contains a control character (U+{ord(char):04X})",
                             hint="write it on one line, in plain text")
        if char in _SHELL_METACHARACTERS:
            raise UsageError(f"{what} contains the shell metacharacter {char!r}",
                             hint="leave out ` $ ; | & < > \\ (letters, digits, spaces and ,.:-'\"()/ are fine)")
    if len(text) > MAX_DESCRIPTION:
        raise UsageError(f"{what} is {len(text)} characters long; at most {MAX_DESCRIPTION}")
    return text


def validate_id(value: str) -> str:
    text = value.strip()
    if not _ID.match(text):
        raise UsageError(f"{value[:40]!r} is not an incident id", hint="ids look like INC-20250315-01; see: "
                                                                       "cuisine-db incident list")
    return text


def _root(settings: Settings) -> Path:
    return settings.state_dir / "incidents"


def _path(settings: Settings, incident_id: str) -> Path:
    return _root(settings) / f"{incident_id}.json"


def _marker(settings: Settings, incident_id: str) -> Path:
    return _root(settings) / "open" / incident_id


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    root = _root(settings)
    (root / "open").mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _to_json(incident: Incident) -> dict[str, Any]:
    return asdict(incident)


def _read(path: Path) -> Incident:
    """An incident's file; FileNotFoundError when it is not there, DamagedRecord naming it when it is damaged."""
    return records.decode(Incident, path.read_bytes(), path)


def _write(settings: Settings, incident: Incident) -> None:
    """Replace the incident's file atomically: a reader sees the old version or the new, never half."""
    records.atomic_write(_path(settings, incident.id), records.encode(incident))


def get(settings: Settings, incident_id: str) -> Incident:
    path = _path(settings, validate_id(incident_id))
    try:
        return _read(path)
    except FileNotFoundError:
        raise UsageError(f"no incident {incident_id}", hint="see: cuisine-db incident list") from None


def scan(settings: Settings) -> tuple[list[Incident], list[records.Damaged]]:
    """Every incident filed here, newest first, and the files that are there but damaged."""
    found, damaged = [], []
    root = _root(settings)
    if root.is_dir():
        for path in sorted(root.glob("INC-*.json")):
            try:
                found.append(_read(path))
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
    markers = _root(settings) / "open"
    try:
        names = sorted(os.listdir(markers))
    except OSError:
        return []
    linked = []
    for name in names:
        try:
            incident = _read(_path(settings, name))
        except (OSError, records.DamagedRecord):
            continue  # `incident list` reports a damaged file
        if incident.status == "open" and incident.covers(env_name):
            linked.append(incident.id)
    return linked


def _next_id(settings: Settings, now: datetime) -> str:
    day = now.strftime("%Y%m%d")
    taken = [int(path.stem.rsplit("-", 1)[1]) for path in _root(settings).glob(f"INC-{day}-*.json")]
    return f"INC-{day}-{max(taken, default=0) + 1:02d}"


def open_incident(settings: Settings, severity: str | int | None, description: str | None,
                  env_name: str | None = None) -> Incident:
    """Validate, allocate the day's next id and store the incident as open."""
    level = validate_severity(severity)
    text = validate_text(description, "description", required=True)
    if env_name is not None:
        settings.env(env_name)  # an unknown environment is a usage error
    now = _now()
    with _locked(settings):
        incident = Incident(id=_next_id(settings, now), severity=level, description=text, env=env_name,
                            status="open", opened_at=now.isoformat(), opened_by=who())
        _write(settings, incident)
        _marker(settings, incident.id).write_text((env_name or "") + "\n", encoding="utf-8")
    return incident


def resolve(settings: Settings, incident_id: str, note: str | None = None) -> Incident:
    text = validate_text(note, "note", required=False)
    with _locked(settings):
        incident = get(settings, incident_id)
        if incident.status != "open":
            raise UsageError(f"incident {incident.id} was already resolved at {incident.resolved_at} "
                             f"by {incident.resolved_by}")
        resolved = replace(incident, status="resolved", resolved_at=_now().isoformat(),
                           resolved_by=who(), resolution=text or None)
        _write(settings, resolved)
        _marker(settings, incident.id).unlink(missing_ok=True)
    return resolved


def record_notification(settings: Settings, incident_id: str, notification: Notification) -> Incident:
    with _locked(settings):
        incident = get(settings, incident_id)
        updated = replace(incident, notifications=(*incident.notifications, notification))
        _write(settings, updated)
    return updated


def linked_entries(settings: Settings, incident: Incident) -> list[dict[str, Any]]:
    """Every journal line of every environment that names the incident, oldest first."""
    entries = []
    for path in sorted(settings.state_dir.glob("*/journal.jsonl")):
        try:
            lines = journal.read(path)
        except (OSError, ValueError):
            continue
        entries += [entry for entry in lines if incident.id in entry.get("incidents", [])]
    return sorted(entries, key=started_at)


def started_at(entry: Mapping[str, Any]) -> datetime:
    try:
        return parse_time(str(entry["at"]))
    except (KeyError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


def export(settings: Settings, incident_id: str) -> dict[str, bytes]:
    """What must survive the host, as repository-relative names and contents: the incident, its journal lines,
    and its report. Copying an incident elsewhere is `for name, data in export(...).items(): put(name, data)`."""
    from cuisine_db.ops.incident_report import markdown

    incident = get(settings, incident_id)
    entries = linked_entries(settings, incident)
    prefix = f"incidents/{incident.id}"
    return {
        f"{prefix}/incident.json": (json.dumps(_to_json(incident), indent=2, sort_keys=True) + "\n").encode(),
        f"{prefix}/journal.jsonl": "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries).encode(),
        f"{prefix}/report.md": markdown(incident, entries).encode(),
    }

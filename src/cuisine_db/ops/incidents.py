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
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cuisine_db import records
from cuisine_db.config import Settings
from cuisine_db.errors import UsageError
from cuisine_db.ops import journal
from cuisine_db.ops.incident_record import SEVERITIES as SEVERITIES
from cuisine_db.ops.incident_record import Incident as Incident
from cuisine_db.ops.incident_record import Notification as Notification
from cuisine_db.ops.incident_record import all_incidents as all_incidents
from cuisine_db.ops.incident_record import get as get
from cuisine_db.ops.incident_record import incident_path, incidents_root, to_json
from cuisine_db.ops.incident_record import open_ids as open_ids
from cuisine_db.ops.incident_record import parse_time as parse_time
from cuisine_db.ops.incident_record import scan as scan
from cuisine_db.ops.incident_record import started_at as started_at
from cuisine_db.ops.incident_record import validate_id as validate_id
from cuisine_db.ops.incident_report import markdown
from cuisine_db.whoami import who

MAX_DESCRIPTION = 500
# Descriptions travel to chat webhooks, reports and operators' terminals, and get pasted into shells.
_SHELL_METACHARACTERS = "`$;|&<>\\"


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


def _marker(settings: Settings, incident_id: str) -> Path:
    return incidents_root(settings) / "open" / incident_id


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    root = incidents_root(settings)
    (root / "open").mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write(settings: Settings, incident: Incident) -> None:
    """Replace the incident's file atomically: a reader sees the old version or the new, never half."""
    records.atomic_write(incident_path(settings, incident.id), records.encode(incident))


def _next_id(settings: Settings, now: datetime) -> str:
    day = now.strftime("%Y%m%d")
    taken = [int(path.stem.rsplit("-", 1)[1]) for path in incidents_root(settings).glob(f"INC-{day}-*.json")]
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


def export(settings: Settings, incident_id: str) -> dict[str, bytes]:
    """What must survive the host, as repository-relative names and contents: the incident, its journal lines,
    and its report. Copying an incident elsewhere is `for name, data in export(...).items(): put(name, data)`."""
    incident = get(settings, incident_id)
    entries = linked_entries(settings, incident)
    prefix = f"incidents/{incident.id}"
    return {
        f"{prefix}/incident.json": (json.dumps(to_json(incident), indent=2, sort_keys=True) + "\n").encode(),
        f"{prefix}/journal.jsonl": "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries).encode(),
        f"{prefix}/report.md": markdown(incident, entries).encode(),
    }

"""incident create and resolve as commands: journaled, announced on the webhook, copied to the backup repositories."""

from __future__ import annotations

from dataclasses import dataclass

from cuisine_db.config import Settings
from cuisine_db.ops import incidents, webhook
from cuisine_db.ops.incident_copy import Copy, copy_incident
from cuisine_db.ops.incidents import Incident, Notification
from cuisine_db.ops.journal import Entry, journaled


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """An incident opened or resolved: the webhook's answer (None: no webhook configured; `webhook_unset`: its
    variable is named but not set) and the copies to the backup repositories (a failed one is not an error)."""

    incident: Incident
    webhook: Notification | None
    webhook_unset: bool
    copies: list[Copy]


def _announce(settings: Settings, event: str, incident: Incident, entry: Entry) -> tuple[Notification | None, bool]:
    """Notify the webhook if one is configured; a failure is recorded with the incident, never raised."""
    if settings.incident_webhook is None:
        if settings.incident_webhook_env:
            entry.details["webhook"] = "not configured"
            return None, True
        return None, False
    note = webhook.notify(settings.incident_webhook, event, incident)
    incidents.record_notification(settings, incident.id, note)
    entry.details["webhook"] = ("delivered " if note.delivered else "not delivered: ") + note.detail
    return note, False


def _copies_of(copies: list[Copy]) -> dict[str, list[str]]:
    return {"copied to": [c.repository for c in copies if c.copied],
            "not copied to": [c.repository for c in copies if not c.copied]}


def create(settings: Settings, severity: str | None, description: str | None, env_name: str | None) -> IncidentChange:
    """make incident-create, journaled as `incident create` on the incident's environment (the default one for an
    incident of every environment): validated before anything is written, the journal included; then opened,
    announced and copied."""
    incidents.validate_severity(severity)
    incidents.validate_text(description, "description", required=True)
    journal_env = settings.env(env_name)
    arguments = {"severity": severity, "description": description, "env": env_name}
    with journaled(settings, journal_env, "incident create", arguments) as entry:
        incident = incidents.open_incident(settings, severity, description, env_name)
        entry.details["incident"] = incident.id
        note, unset = _announce(settings, "opened", incident, entry)
        copies = copy_incident(settings, incident.id)
        entry.details.update(_copies_of(copies))
    return IncidentChange(incidents.get(settings, incident.id), note, unset, copies)


def resolve(settings: Settings, incident_id: str, note: str | None) -> IncidentChange:
    """incident resolve, journaled as `incident resolve` on the incident's environment (the default one for an
    incident of every environment); copied after the journal line is written, so the copy's timeline ends with the
    resolution."""
    incidents.validate_text(note, "note", required=False)
    incident = incidents.get(settings, incident_id)
    journal_env = settings.env(incident.env)
    with journaled(settings, journal_env, "incident resolve", {"incident": incident.id, "note": note}) as entry:
        resolved = incidents.resolve(settings, incident.id, note)
        notification, unset = _announce(settings, "resolved", resolved, entry)
    copies = copy_incident(settings, resolved.id)
    return IncidentChange(incidents.get(settings, resolved.id), notification, unset, copies)

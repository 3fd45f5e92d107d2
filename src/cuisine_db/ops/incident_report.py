"""An incident's report: a Markdown timeline of what ran while it was open, built from the journal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cuisine_db import humanize
from cuisine_db.ops.incident_record import Incident, parse_time, started_at


def duration(seconds: float) -> str:
    """3725.2 -> '1h 02m 05s'; under a minute keeps a decimal ('4.2s')."""
    return humanize.duration(seconds, sep=" ")


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _arguments(arguments: Mapping[str, Any] | None) -> str:
    if not arguments:
        return ""
    shown = [f"{key}={value}" for key, value in arguments.items() if value not in (None, False, "", [])]
    return ", ".join(shown)


def _outcome(entry: Mapping[str, Any]) -> str:
    outcome = str(entry.get("outcome", "?"))
    if entry.get("error"):
        return f"**{outcome}**: {entry['error']}"
    return outcome


def markdown(incident: Incident, entries: Sequence[Mapping[str, Any]], now: datetime | None = None) -> str:
    """The report: a summary (severity, scope, who, time to recovery, what ran) and the timeline."""
    opened = parse_time(incident.opened_at)
    ran = [entry for entry in entries if not str(entry.get("command", "")).startswith("incident ")]
    failed = [entry for entry in ran if entry.get("outcome") == "failed"]
    refused = [entry for entry in ran if entry.get("outcome") == "refused"]
    busy = sum(float(entry.get("duration_s") or 0) for entry in ran)
    recovery = incident.time_to_recovery()
    if recovery is None:
        elapsed = ((now or datetime.now(UTC)) - opened).total_seconds()
        recovery_text = f"not resolved yet (open for {duration(max(elapsed, 0))})"
    else:
        recovery_text = duration(recovery)
    lines = [
        f"# Incident {incident.id}: {_cell(incident.description)}",
        "",
        "| | |",
        "|---|---|",
        f"| severity | {incident.severity} ({incident.severity_name}) |",
        f"| status | {incident.status} |",
        f"| scope | {incident.scope} |",
        f"| opened | {opened:%Y-%m-%d %H:%M:%S} UTC by {incident.opened_by} |",
    ]
    if incident.resolved_at:
        lines.append(f"| resolved | {parse_time(incident.resolved_at):%Y-%m-%d %H:%M:%S} UTC "
                     f"by {incident.resolved_by} |")
    lines += [
        f"| time to recovery | {recovery_text} |",
        f"| commands | {len(ran)} run, {len(failed)} failed, {len(refused)} refused; "
        f"{duration(busy)} spent in commands |",
    ]
    if incident.resolution:
        lines.append(f"| resolution | {_cell(incident.resolution)} |")
    lines += ["", "## Timeline", "",
              "| time (UTC) | since opening | env | who | command | arguments | outcome | duration |",
              "|---|---|---|---|---|---|---|---|"]
    events: list[tuple[datetime, list[str]]] = [
        (opened, [f"{opened:%H:%M:%S}", "+0s", incident.env or "all", incident.opened_by, "incident opened",
                  f"severity {incident.severity}", "open", ""]),
    ]
    # The incident's own create and resolve lines are the opened and resolved rows.
    for entry in ran:
        at = started_at(entry)
        offset = (at - opened).total_seconds()
        sign = "+" if offset >= 0 else "-"
        events.append((at, [f"{at:%H:%M:%S}", f"{sign}{duration(abs(offset))}", str(entry.get("env", "")),
                            str(entry.get("who", "")), str(entry.get("command", "")),
                            _arguments(entry.get("arguments")), _outcome(entry),
                            duration(float(entry.get("duration_s") or 0))]))
    if incident.resolved_at:
        resolved = parse_time(incident.resolved_at)
        # Resolution times are kept to the second: a command linked to the incident started before it, even when
        # the journal's finer clock puts it later in the same second.
        last = max([resolved, *(at for at, _ in events)])
        events.append((last, [f"{resolved:%H:%M:%S}", f"+{duration((resolved - opened).total_seconds())}",
                                  incident.env or "all", str(incident.resolved_by), "incident resolved", "",
                                  "resolved", ""]))
    # Python's sort is stable: journal lines that share a second keep the journal's order.
    for _, cells in sorted(events, key=lambda event: event[0]):
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    if incident.notifications:
        lines += ["", "## Notifications", ""]
        lines += [f"- {note.at}: {note.event}, {'delivered' if note.delivered else 'not delivered'} ({note.detail})"
                  for note in incident.notifications]
    return "\n".join(lines) + "\n"

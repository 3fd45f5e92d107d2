"""Announcing incidents on a webhook (Slack-compatible JSON with a `text` field, plus the incident itself).

A notification that cannot be delivered never fails the command: opening an incident during an outage must
work when the chat service is down too. The URL is never shown (chat webhooks carry their token in it):
results name only the host.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict
from datetime import UTC, datetime
from urllib.parse import urlsplit

from cuisine_db import __version__
from cuisine_db.ops.incidents import Incident, Notification

TIMEOUT_S = 5.0


def payload(event: str, incident: Incident) -> dict[str, object]:
    verb = {"opened": "opened", "resolved": "resolved"}[event]
    scope = incident.scope
    text = (f"Incident {incident.id} {verb} (severity {incident.severity}, {incident.severity_name}, {scope}): "
            f"{incident.description}")
    if event == "resolved" and incident.time_to_recovery() is not None:
        text += f" — recovered in {round(incident.time_to_recovery() or 0)}s"
    body = asdict(incident)
    body.pop("notifications", None)
    return {"event": f"incident.{event}", "text": text, "incident": body}


def host_of(url: str) -> str:
    return urlsplit(url).hostname or "?"


def notify(url: str, event: str, incident: Incident, timeout: float = TIMEOUT_S) -> Notification:
    """POST the event; return what happened, in words that never include the URL."""
    data = json.dumps(payload(event, incident)).encode()
    request = urllib.request.Request(  # noqa: S310 - the config only accepts http(s) URLs
        url, data=data, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"cuisine-db/{__version__}"},
    )
    host = host_of(url)
    at = datetime.now(UTC).replace(microsecond=0).isoformat()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, see above
            return Notification(event, at, True, f"{host}: HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return Notification(event, at, False, f"{host}: HTTP {exc.code}")
    except urllib.error.URLError as exc:
        reason = exc.reason.strerror if isinstance(exc.reason, OSError) and exc.reason.strerror else str(exc.reason)
        return Notification(event, at, False, f"{host}: {reason}")
    except TimeoutError:
        return Notification(event, at, False, f"{host}: no answer within {timeout:.0f}s")
    except OSError as exc:
        return Notification(event, at, False, f"{host}: {exc.strerror or type(exc).__name__}")

"""The journal: one JSON line per mutating command (who, when, env, command, arguments, outcome, duration).

While an incident is open, each line also names it (`"incidents": ["INC-20250315-01"]`), so the incident's
report can be built from the journal.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError
from cuisine_db.ops.incident_record import open_ids
from cuisine_db.whoami import who

_SECRET_KEY = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments safe to record: values under secret-looking names are replaced."""
    return {key: REDACTED if _SECRET_KEY.search(key) and value is not None else value
            for key, value in arguments.items()}


def journal_path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / "journal.jsonl"


def append(path: Path, entry: Mapping[str, Any]) -> None:
    """Append one line atomically with respect to other writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, default=str, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(slots=True)
class Entry:
    """What a journaled command may add to its line while it runs."""

    details: dict[str, Any] = field(default_factory=dict)


@contextmanager
def journaled(
    settings: Settings, env: Environment, command: str, arguments: Mapping[str, Any]
) -> Iterator[Entry]:
    """Record the command's outcome and duration, whether it succeeds, fails or is refused."""
    entry = Entry()
    # Open at the start or at the end: incident create and resolve are linked to their own incident too.
    linked = open_ids(settings, env.name)
    started = time.monotonic()
    record: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "who": who(),
        "env": env.name,
        "command": command,
        "arguments": redact(arguments),
    }
    try:
        yield entry
    except CuisineDbError as exc:
        record.update(outcome="refused" if exc.exit_code == 4 else "failed", error=exc.message)
        raise
    except BaseException as exc:
        record.update(outcome="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        record["outcome"] = "ok"
    finally:
        record["duration_s"] = round(time.monotonic() - started, 3)
        if entry.details:
            record["details"] = entry.details
        linked += [found for found in open_ids(settings, env.name) if found not in linked]
        if linked:
            record["incidents"] = linked
        append(journal_path(settings, env), record)

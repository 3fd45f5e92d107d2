"""Durations as operators type them (`30s`, `5min`, `2h`, `500ms`, or bare seconds), to whole milliseconds."""

from __future__ import annotations

import re

from cuisine_db.errors import UsageError

_DURATION = re.compile(r"^\s*(?P<number>\d+(\.\d+)?)\s*(?P<unit>ms|s|min|h|d)?\s*$")
_MS_PER = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(value: str, what: str = "timeout") -> int:
    """`30s` -> 30000; a bare number means seconds (never milliseconds, unlike PostgreSQL's own settings)."""
    found = _DURATION.match(value)
    if found is None:
        raise UsageError(f"{what} {value!r} is not a duration",
                         hint="e.g. 500ms, 30s, 5min, 2h (a bare number is seconds)")
    ms = round(float(found.group("number")) * _MS_PER[found.group("unit") or "s"])
    if ms < 1 or ms > 2_147_483_647:
        raise UsageError(f"{what} {value!r} is out of range", hint="between 1ms and 24d")
    return ms


def shown(ms: int) -> str:
    """Milliseconds in the largest unit that divides them (30000 -> 30s)."""
    for unit in ("d", "h", "min", "s"):
        if ms % _MS_PER[unit] == 0:
            return f"{ms // _MS_PER[unit]}{unit}"
    return f"{ms}ms"

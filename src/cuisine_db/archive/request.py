"""What an archive run is asked to do, checked before anything runs: `older-than=365d`, `batch=`, `pause=`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from cuisine_db.durations import duration_ms
from cuisine_db.errors import UsageError

_AGE = re.compile(r"^\s*(?P<number>\d{1,6})\s*(?P<unit>h|d|w)\s*$")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
LONGEST = timedelta(days=100 * 366)
DEFAULT_BATCH = 1000
LARGEST_BATCH = 100_000
LONGEST_PAUSE_MS = 60_000


def older_than(text: str | None) -> timedelta:
    """`365d`, `52w` or `36h` -> a timedelta; anything else (a bare number, 0, a century and more) is bad input."""
    if text is None or not text.strip():
        raise UsageError("give the age of the rows to archive: older-than=365d", hint="units: h, d or w")
    found = _AGE.match(text)
    if found is None:
        raise UsageError(f"older-than={text!r} is not an age", hint="e.g. older-than=365d, 52w or 36h (h, d or w)")
    age = int(found["number"]) * _UNIT[found["unit"]]
    if age < timedelta(hours=1):
        raise UsageError(f"older-than={text!r} would archive rows up to now", hint="give at least 1h")
    if age > LONGEST:
        raise UsageError(f"older-than={text!r} is more than a century", hint="e.g. older-than=365d")
    return age


def batch_size(value: int | None) -> int:
    if value is None:
        return DEFAULT_BATCH
    if not 1 <= value <= LARGEST_BATCH:
        raise UsageError(f"batch={value} is out of range", hint=f"between 1 and {LARGEST_BATCH:,} rows per batch")
    return value


def pause_seconds(text: str | None) -> float:
    """The rest between two delete batches (replicas and vacuum catch up); `0` or none means no rest."""
    if text is None or text.strip() in ("", "0"):
        return 0.0
    ms = duration_ms(text, "pause")
    if ms > LONGEST_PAUSE_MS:
        raise UsageError(f"pause={text!r} is longer than a minute", hint="e.g. pause=200ms")
    return ms / 1000


@dataclass(frozen=True, slots=True)
class ArchiveRequest:
    """An archive run as asked: the table and column as typed (checked against the catalogs later)."""

    table: str
    older_than: str
    age: timedelta
    column: str | None = None
    batch_size: int = DEFAULT_BATCH
    pause: float = 0.0


def make_request(table: str | None, older: str | None, column: str | None = None, batch: int | None = None,
                 pause: str | None = None) -> ArchiveRequest:
    """Every argument checked, in the order an operator reads them; the first bad one is the error."""
    if table is None or not table.strip():
        raise UsageError("give the table: table=executions")
    if column is not None and not column.strip():
        raise UsageError("column= is empty", hint="leave it out for the table's default, or name a timestamp column")
    age = older_than(older)
    return ArchiveRequest(table.strip(), (older or "").strip(), age, column.strip() if column else None,
                          batch_size(batch), pause_seconds(pause))

"""Recovery targets as operators type them (`target="2026-03-15 12:00:00+00"`, `lsn=0/3000060`, `xid=761`), checked
before anything stops, and turned into PostgreSQL's recovery settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cuisine_db.errors import UsageError

_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
_XID = re.compile(r"^[0-9]{1,19}$")


@dataclass(frozen=True, slots=True)
class RecoveryTarget:
    """Where a replay stops: the end of the archive, the backup's own end (`immediate`), a commit time, an LSN or
    a transaction. `inclusive` = stop just after the target (its transaction included) or just before it."""

    kind: str
    value: str | None = None
    inclusive: bool = True

    @property
    def time(self) -> datetime | None:
        return datetime.fromisoformat(self.value) if self.kind == "time" and self.value else None

    def settings(self) -> dict[str, str]:
        """The recovery_target_* settings: the newest timeline is followed, except to the backup's own end, which
        lies on the backup's own timeline. Following `latest` there only read every later timeline's history file
        through the restore_command first (a restore's promotion adds one each time)."""
        if self.kind == "immediate":
            return {"recovery_target_timeline": "current", "recovery_target": "immediate"}
        found = {"recovery_target_timeline": "latest"}
        if self.kind in ("time", "lsn", "xid"):
            found[f"recovery_target_{self.kind}"] = str(self.value)
            found["recovery_target_inclusive"] = "on" if self.inclusive else "off"
        return found

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the archive"
        if self.kind == "immediate":
            return "the end of the backup"
        where = {"time": "transactions committed at", "lsn": "WAL position", "xid": "transaction"}[self.kind]
        return f"{where} {self.value} ({'included' if self.inclusive else 'excluded'})"

    def make_args(self) -> str:
        """How to ask for this target again, as make variables."""
        if self.kind in ("end", "immediate"):
            return ""
        name = "target" if self.kind == "time" else self.kind
        value = f'"{self.value}"' if self.kind == "time" else str(self.value)
        return f"{name}={value}" + ("" if self.inclusive else " inclusive=0")


END = RecoveryTarget("end")
IMMEDIATE = RecoveryTarget("immediate")


def parse_time(text: str) -> datetime:
    """A point in time with its time zone (an operator at 3 a.m. must not be guessed at): ISO 8601 with an offset,
    `Z`, or ` UTC`."""
    cleaned = text.strip()
    if cleaned.upper().endswith(" UTC"):
        cleaned = cleaned[:-4] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise UsageError(f"target={text!r} is not a time",
                         hint='write it as target="2026-03-15 12:00:00+00" (ISO 8601 with a time zone)') from None
    if moment.tzinfo is None:
        raise UsageError(f"target={text!r} has no time zone",
                         hint='add one, e.g. target="2026-03-15 12:00:00+00" for UTC')
    return moment


def parse(target: str | None = None, lsn: str | None = None, xid: str | None = None, *,
          inclusive: bool = True, now: datetime | None = None) -> RecoveryTarget:
    """One of target=, lsn= or xid= (or none: the end of the archive); bad input is exit 2."""
    given = [name for name, value in (("target", target), ("lsn", lsn), ("xid", xid)) if value]
    if len(given) > 1:
        raise UsageError(f"give one of target=, lsn= or xid=, not {' and '.join(given)}")
    if target:
        moment = parse_time(target)
        if moment > (now or datetime.now(UTC)):
            raise UsageError(f"target={target!r} is in the future",
                             hint="leave target= out to replay everything archived")
        return RecoveryTarget("time", moment.isoformat(sep=" "), inclusive)
    if lsn:
        if not _LSN.match(lsn.strip()):
            raise UsageError(f"lsn={lsn!r} is not a WAL position", hint="e.g. lsn=0/3000060 (from db-find-target)")
        high, low = lsn.strip().split("/")
        return RecoveryTarget("lsn", f"{int(high, 16):X}/{int(low, 16):X}", inclusive)
    if xid:
        if not _XID.match(xid.strip()) or int(xid) < 3:
            raise UsageError(f"xid={xid!r} is not a transaction ID", hint="e.g. xid=761 (from db-find-target)")
        return RecoveryTarget("xid", str(int(xid)), inclusive)
    if not inclusive:
        raise UsageError("inclusive=0 needs a target: target=, lsn= or xid=")
    return END

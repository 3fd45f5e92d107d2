"""A data directory's postmaster.pid, read directly: what `pg_ctl status` and `pg_ctl start|stop --wait` read.

pg_ctl polls this file ten times a second; a restore starts and stops a server on its downtime path, so the
tool reads it itself, every POLL seconds, instead of paying pg_ctl's tenth of a second (and a process) per look.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cuisine_db.postgres import safe_files

POLL = 0.02  # a start or a stop is over in a few tenths of a second: coarser polling would be a visible share
# The postmaster writes its state on the file's eighth line (PostgreSQL 10 and later): pg_ctl's "ready" is
# PM_STATUS_READY, or PM_STATUS_STANDBY for a hot standby accepting read-only connections.
READY = ("ready", "standby")
_STATUS_LINE = 7


@dataclass(frozen=True, slots=True)
class Postmaster:
    """A live postmaster of a data directory and the state it last wrote (None before it wrote one)."""

    pid: int
    status: str | None

    @property
    def ready(self) -> bool:
        return self.status in READY


def live(datadir: Path) -> Postmaster | None:
    """The postmaster whose pid postmaster.pid names, if that process exists; None when the file is absent, not
    yet written whole, or names a process that is gone (a crash leaves the file behind)."""
    raw = safe_files.read(datadir / "postmaster.pid")
    lines = raw.decode(errors="replace").splitlines() if raw else []
    first = lines[0].strip() if lines else ""
    if not first.isdigit():
        return None
    pid = int(first)
    # A zombie counts as live, as pg_ctl status counts it: a new postmaster's own lock-file check (kill 0) refuses
    # to start beside it ("lock file already exists") until its parent reaps it. stop() also waits for exited().
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # another user's process: it exists
        pass
    status = lines[_STATUS_LINE].strip() if len(lines) > _STATUS_LINE else None
    return Postmaster(pid, status or None)


def exited(pid: int) -> bool:
    """The process is gone, or a zombie its parent has not reaped yet (an orphaned postmaster's parent is init,
    which may reap late): it holds no port, no shared memory and no file any more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: whether the pid exists is all there is to know
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def fatal_lines(log_dir: Path, most: int = 2, since: float = 0.0) -> list[str]:
    """The last FATAL or PANIC messages of the server's log files (jsonlog, csvlog or stderr) written at or after
    `since` (a wall-clock time: an older file holds an earlier failure, not this one), for an error that says why a
    start failed: with the logging collector on, pg_ctl's own log holds only the redirect notice. Every such file is
    read, not only the newest: the collector's .log and .json files of one start can carry the same mtime (the
    kernel's clock for it ticks every few milliseconds), and only one holds the message."""
    try:
        if log_dir.is_symlink():  # the server's user could have put a link there: nothing is read through it
            return []
        files = sorted((f.stat().st_mtime, f.name, f) for f in log_dir.iterdir()
                       if f.is_file() and not f.is_symlink() and f.stat().st_mtime >= since)
    except OSError:
        return []
    found: list[str] = []
    for _, _, path in files:
        for line in _fatal(safe_files.read(path, limit=64 * 1024**2) or b""):
            if line not in found:  # a message sent to two destinations counts once
                found.append(line)
    return found[-most:]


def _fatal(raw: bytes) -> list[str]:
    found = []
    for line in raw.decode(errors="replace").splitlines():
        if "FATAL" not in line and "PANIC" not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            found.append(line.strip()[-300:])
            continue
        if isinstance(record, dict) and record.get("error_severity") in ("FATAL", "PANIC"):
            found.append(f"{record['error_severity']}: {record.get('message', '')}")
    return found

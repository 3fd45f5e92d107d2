"""The server's own logs, CSV (csvlog) or JSON (jsonlog, PostgreSQL 15+), read as uniform records.

Local clusters log under their data directory's `log/` (CSV on 14, JSON on 15+); remote servers' logs are
read from the environment's `audit_log_dir`, where they are copied or mounted. Files are streamed; a
truncated last line (the server is still writing) is skipped and counted, never fatal.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# csvlog columns, in order (PostgreSQL 14 adds leader_pid and query_id at the end; older files stop earlier).
CSV_COLUMNS = (
    "log_time", "user_name", "database_name", "process_id", "connection_from", "session_id", "session_line_num",
    "command_tag", "session_start_time", "virtual_transaction_id", "transaction_id", "error_severity",
    "sql_state_code", "message", "detail", "hint", "internal_query", "internal_query_pos", "context", "query",
    "query_pos", "location", "application_name", "backend_type", "leader_pid", "query_id",
)
_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: (\S+))?$")
_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)?$")


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log line, whichever format it came from."""

    time: datetime
    user: str | None
    database: str | None
    client: str | None
    session: str | None
    severity: str
    sqlstate: str | None
    message: str
    detail: str | None
    application: str | None
    backend_type: str | None


@dataclass(slots=True)
class ReadStats:
    """What reading cost: files, records, lines that could not be read."""

    files: list[str]
    records: int = 0
    skipped: int = 0


def parse_time(text: str) -> datetime | None:
    """A log timestamp ('2026-03-01 12:00:00.123 UTC', '... +01', '... CET') as an aware datetime."""
    found = _TIME.match(text.strip())
    if found is None:
        return None
    moment = datetime.fromisoformat(found.group(1))
    zone = found.group(2) or "UTC"
    offset = _OFFSET.match(zone)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0))
        return moment.replace(tzinfo=timezone(sign * delta))
    if zone in ("UTC", "GMT", "Z"):
        return moment.replace(tzinfo=UTC)
    try:
        return moment.replace(tzinfo=ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        # An abbreviation zoneinfo does not know: read it as UTC (db-enable-audit sets log_timezone = UTC).
        return moment.replace(tzinfo=UTC)


def _host(connection_from: str | None) -> str | None:
    if not connection_from:
        return None
    if connection_from == "[local]":
        return "[local]"
    host, _, port = connection_from.rpartition(":")
    return host if host and port.isdigit() else connection_from


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _from_csv(row: list[str]) -> LogRecord | None:
    fields = dict(zip(CSV_COLUMNS, row, strict=False))
    moment = parse_time(fields.get("log_time", ""))
    if moment is None or "message" not in fields:
        return None
    return LogRecord(
        time=moment, user=_text(fields.get("user_name")), database=_text(fields.get("database_name")),
        client=_host(fields.get("connection_from")), session=_text(fields.get("session_id")),
        severity=fields.get("error_severity", ""), sqlstate=_text(fields.get("sql_state_code")),
        message=fields["message"], detail=_text(fields.get("detail")),
        application=_text(fields.get("application_name")), backend_type=_text(fields.get("backend_type")),
    )


def _from_json(line: str) -> LogRecord | None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    moment = parse_time(str(data.get("timestamp", "")))
    if moment is None:
        return None
    host = data.get("remote_host")
    return LogRecord(
        time=moment, user=_text(data.get("user")), database=_text(data.get("dbname")),
        client=_text(host), session=_text(data.get("session_id")), severity=str(data.get("error_severity", "")),
        sqlstate=_text(data.get("state_code")), message=str(data.get("message", "")),
        detail=_text(data.get("detail")), application=_text(data.get("application_name")),
        backend_type=_text(data.get("backend_type")),
    )


def log_files(folder: Path, since: datetime | None = None) -> list[Path]:
    """The CSV and JSON log files in a folder, oldest first; files last written before `since` are left out."""
    found = [path for path in folder.iterdir() if path.suffix in (".csv", ".json") and path.is_file()]
    if since is not None:
        floor = since.timestamp()
        found = [path for path in found if path.stat().st_mtime >= floor]
    return sorted(found, key=lambda path: (path.stat().st_mtime, path.name))


def read_file(path: Path, stats: ReadStats) -> Iterator[LogRecord]:
    """Every readable record of one file."""
    stats.files.append(str(path))
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        if path.suffix == ".json":
            for line in handle:
                if not line.strip():
                    continue
                record = _from_json(line)
                if record is None:
                    stats.skipped += 1
                    continue
                stats.records += 1
                yield record
        else:
            csv.field_size_limit(sys.maxsize)
            try:
                for row in csv.reader(handle):
                    record = _from_csv(row) if row else None
                    if record is None:
                        stats.skipped += 1
                        continue
                    stats.records += 1
                    yield record
            except csv.Error:
                # A half-written last row: everything before it has been read.
                stats.skipped += 1


def records(folder: Path, since: datetime | None, stats: ReadStats) -> Iterator[LogRecord]:
    """Every record of a folder's log files written since `since`, file by file (streamed, not sorted)."""
    for path in log_files(folder, since):
        yield from read_file(path, stats)

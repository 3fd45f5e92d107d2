"""`db-audit-report`: a day range of the server's logs as a compliance report, with unusual activity flagged.

Days are UTC and inclusive (start=2025-03-01 end=2025-03-31 is all of March). Records before `start`
(up to `baseline_days`) are the baseline that tells a new client address or an unusual login hour from a
usual one. Unusual activity is returned as findings, so it renders like every other check.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UnavailableError, UsageError
from cuisine_db.findings import Finding
from cuisine_db.postgres.local import cluster_for
from cuisine_db.postgres.target import Target
from cuisine_db.security import audit_events as events
from cuisine_db.security.audit_events import AuditEvent, FailedLogin, Login
from cuisine_db.security.logs import LogRecord, ReadStats, records


@dataclass(frozen=True, slots=True)
class ConnectionCount:
    user: str
    client: str
    connections: int
    databases: str
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class WriteCount:
    table: str
    command: str
    statements: int
    users: str


@dataclass(frozen=True, slots=True)
class SuperuserActivity:
    user: str
    connections: int
    statements: int
    clients: str
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Everything the period's logs say about access and change."""

    env: str
    start: date
    end: date
    log_dir: str
    files: int
    records: int
    skipped: int
    audit_source: str
    connections: list[ConnectionCount]
    failed_logins: list[FailedLogin]
    role_changes: list[AuditEvent]
    ddl: list[AuditEvent]
    writes: list[WriteCount]
    superusers: list[SuperuserActivity]
    unusual: list[Finding]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What counts as unusual; the defaults suit a team that works days, UTC."""

    work_hours: tuple[int, int] = (7, 20)
    burst_failures: int = 5
    burst_seconds: int = 60
    baseline_days: int = 90


def parse_hours(value: str) -> tuple[int, int]:
    """'7-20' as (7, 20): logins from 07:00 to 19:59 UTC are usual."""
    first, _, last = value.partition("-")
    if not (first.strip().isdigit() and last.strip().isdigit()):
        raise UsageError(f"hours {value!r} is not a range like 7-20")
    low, high = int(first), int(last)
    if not 0 <= low < high <= 24:
        raise UsageError(f"hours {value!r} must satisfy 0 <= start < end <= 24")
    return low, high


def log_dir(settings: Settings, env: Environment) -> Path:
    """Where an environment's server logs are: its audit_log_dir, or a local cluster's data/log."""
    if env.audit_log_dir is not None:
        folder = env.audit_log_dir if env.audit_log_dir.is_absolute() else settings.root / env.audit_log_dir
    elif env.is_local:
        folder = cluster_for(settings, env).datadir / "log"
    else:
        raise UsageError(f"{env.name!r} is a remote server and has no audit_log_dir",
                         hint="copy or mount its CSV/JSON logs somewhere and name that folder as "
                              f"environments.{env.name}.audit_log_dir in cuisine-db.toml")
    if not folder.is_dir():
        raise UnavailableError(f"the log folder {folder} does not exist",
                               hint="has the server logged yet? (local clusters log under data/log)")
    return folder


def _superusers(settings: Settings, env: Environment,
                target: Target | None = None) -> tuple[set[str] | None, str | None]:
    try:
        with connect(settings, env, "db-audit-report", purpose="monitoring", start=False, target=target) as conn:
            return {row[0] for row in conn.execute(queries.load("security/superusers"))}, None
    except CuisineDbError as exc:
        return None, f"superusers unknown (the server did not answer: {exc.message})"


@dataclass(slots=True)
class _Collected:
    logins: list[Login] = field(default_factory=list)
    failures: list[FailedLogin] = field(default_factory=list)
    audit: dict[str, AuditEvent] = field(default_factory=dict)
    statements: list[AuditEvent] = field(default_factory=list)
    audited_sessions: set[str] = field(default_factory=set)
    baseline_clients: set[str] = field(default_factory=set)
    baseline_hours: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    baseline_records: int = 0
    earliest: datetime | None = None


def _collect(stream: Iterable[LogRecord], since: datetime, start: datetime, end: datetime) -> _Collected:
    found = _Collected()
    for record in stream:
        if record.time < since or record.time >= end:
            continue
        if record.time < start:
            found.baseline_records += 1
            if record.client:
                found.baseline_clients.add(record.client)
            seen = events.login(record)
            if seen is not None:
                found.baseline_hours[seen.user].add(seen.time.astimezone(UTC).hour)
            continue
        found.earliest = record.time if found.earliest is None else min(found.earliest, record.time)
        if events.is_failed_login(record):
            found.failures.append(events.failed_login(record))
        elif (seen := events.login(record)) is not None:
            found.logins.append(seen)
        elif (line := events.pgaudit_line(record)) is not None:
            key, kind, event = line
            if record.session:
                found.audited_sessions.add(record.session)
            # pgaudit writes one line per object a statement touches: one event per statement and object.
            merged = found.audit.get(f"{key}/{event.command}/{event.objects}" if kind == events.WRITE else key)
            if merged is None:
                found.audit[f"{key}/{event.command}/{event.objects}" if kind == events.WRITE else key] = event
            elif kind != events.WRITE:
                found.audit[key] = _merge(merged, event)
        else:
            found.statements.extend(events.statement_events(record))
    return found


def _merge(first: AuditEvent, more: AuditEvent) -> AuditEvent:
    """One event for a statement pgaudit logged once per object (CREATE TABLE with its sequence and index)."""
    commands = first.command.split(", ")
    objects = [o for o in first.objects.split(", ") if o]
    if more.command not in commands:
        commands.append(more.command)
    if more.objects and more.objects not in objects:
        objects.append(more.objects)
    return AuditEvent(first.time, first.user, first.database, first.client, first.kind, ", ".join(commands),
                      ", ".join(objects), first.statement, first.source, first.session)


def first_seen_clients(logins: list[Login], baseline: set[str], baseline_records: int,
                       days: int) -> list[Finding]:
    """Client addresses that logged in during the period but appear nowhere in the baseline."""
    if baseline_records == 0:
        return []
    by_client: dict[str, list[Login]] = defaultdict(list)
    for seen in logins:
        if seen.client and seen.client not in baseline:
            by_client[seen.client].append(seen)
    return [Finding("first-seen-client", "warning", client,
                    f"first login {found[0].time:%Y-%m-%d %H:%M} UTC as {', '.join(sorted({s.user for s in found}))}; "
                    f"{len(found)} login(s); not seen in the {days} days before",
                    "confirm who connects from there; if nobody should, reject it in pg_hba.conf")
            for client, found in sorted(by_client.items())]


def logins_at_unusual_hours(logins: list[Login], hours: tuple[int, int],
                            baseline_hours: dict[str, set[int]]) -> list[Finding]:
    """Logins outside working hours at an hour the user never logged in at during the baseline."""
    odd: dict[str, list[Login]] = defaultdict(list)
    for seen in logins:
        hour = seen.time.astimezone(UTC).hour
        if not hours[0] <= hour < hours[1] and hour not in baseline_hours.get(seen.user, set()):
            odd[seen.user].append(seen)
    findings = []
    for user, found in sorted(odd.items()):
        when = ", ".join(f"{s.time:%Y-%m-%d %H:%M}" for s in found[:5]) + (" ..." if len(found) > 5 else "")
        findings.append(Finding("login-at-unusual-hour", "warning", user,
                                f"{len(found)} login(s) outside {hours[0]:02d}:00-{hours[1]:02d}:00 UTC ({when}), "
                                "at hours this user had not logged in before",
                                f"confirm with {user}'s owner; if it was not them: make db-update-password "
                                f"username={user}"))
    return findings


def failed_login_bursts(failures: list[FailedLogin], threshold: int, seconds: int) -> list[Finding]:
    """Runs of at least `threshold` failed logins from one client within `seconds`: password guessing."""
    findings = []
    by_client: dict[str, list[FailedLogin]] = defaultdict(list)
    for failure in sorted(failures, key=lambda f: f.time):
        by_client[failure.client or "?"].append(failure)
    window = timedelta(seconds=seconds)
    for client, found in sorted(by_client.items()):
        index = 0
        while index < len(found):
            end = index
            while end + 1 < len(found) and found[end + 1].time - found[index].time <= window:
                end += 1
            if end - index + 1 >= threshold:
                # Extend the burst while failures keep coming within the window of the last one.
                while end + 1 < len(found) and found[end + 1].time - found[end].time <= window:
                    end += 1
                burst = found[index:end + 1]
                users = ", ".join(sorted({f.user or "?" for f in burst}))
                span = (burst[-1].time - burst[0].time).total_seconds()
                findings.append(Finding("failed-login-burst", "error", client,
                                        f"{len(burst)} failed logins in {span:.0f} s from "
                                        f"{burst[0].time:%Y-%m-%d %H:%M:%S} UTC, as {users}",
                                        "reject the address in pg_hba.conf or at the firewall; check the "
                                        "credentials of whatever runs there"))
                index = end + 1
            else:
                index += 1
    return findings


def _connections(logins: list[Login]) -> list[ConnectionCount]:
    grouped: dict[tuple[str, str], list[Login]] = defaultdict(list)
    for seen in logins:
        grouped[(seen.user, seen.client or "?")].append(seen)
    return sorted((ConnectionCount(user, client, len(found), ", ".join(sorted({s.database or "?" for s in found})),
                                   min(s.time for s in found), max(s.time for s in found))
                   for (user, client), found in grouped.items()), key=lambda c: (-c.connections, c.user, c.client))


def _writes(audit: list[AuditEvent]) -> list[WriteCount]:
    counts: Counter[tuple[str, str]] = Counter()
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in audit:
        if event.kind == events.WRITE:
            for table in [t for t in event.objects.split(", ") if t] or ["?"]:
                counts[(table, event.command)] += 1
                users[(table, event.command)].add(event.user or "?")
    return [WriteCount(table, command, count, ", ".join(sorted(users[(table, command)])))
            for (table, command), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _superuser_activity(superusers: set[str], logins: list[Login], audit: list[AuditEvent]) -> list[SuperuserActivity]:
    rows = []
    for user in sorted(superusers):
        mine = [s for s in logins if s.user == user]
        acts = [e for e in audit if e.user == user]
        times = [s.time for s in mine] + [e.time for e in acts]
        if times:
            clients = ", ".join(sorted({s.client or "?" for s in mine}))
            rows.append(SuperuserActivity(user, len(mine), len(acts), clients, min(times), max(times)))
    return rows


def build(env: Environment, folder: Path, stream: Iterable[LogRecord], stats: ReadStats, *, start: date, end: date,
          superusers: set[str] | None, thresholds: Thresholds = Thresholds()) -> AuditReport:
    """The report from a stream of log records (any order)."""
    begin = datetime.combine(start, time(), UTC)
    finish = datetime.combine(end + timedelta(days=1), time(), UTC)
    found = _collect(stream, begin - timedelta(days=thresholds.baseline_days), begin, finish)
    statements = [e for e in found.statements if e.session not in found.audited_sessions]
    audit = sorted([*found.audit.values(), *statements], key=lambda e: e.time)
    source = "pgaudit" if found.audit else ("log_statement" if statements else "none")
    notes = []
    if not found.logins and not found.failures:
        notes.append("no login records: connection logging was off (make db-enable-audit) or nobody connected")
    if source == "none":
        notes.append("no role, DDL or write records: audit logging was off (make db-enable-audit) or nothing changed")
    elif source == "log_statement":
        notes.append("without pgaudit, writes are not logged (log_statement = 'ddl'): writes per table are unknown")
    if found.baseline_records == 0:
        notes.append(f"no records in the {thresholds.baseline_days} days before {start}: first-seen client "
                     "addresses cannot be told apart")
    if found.earliest is not None and found.earliest > begin + timedelta(days=1):
        notes.append(f"the logs begin at {found.earliest:%Y-%m-%d %H:%M} UTC: earlier days are not covered")
    if stats.skipped:
        notes.append(f"{stats.skipped} log line(s) could not be read (a file still being written?)")
    if superusers is None:
        superusers = set()
    unusual = [
        *failed_login_bursts(found.failures, thresholds.burst_failures, thresholds.burst_seconds),
        *first_seen_clients(found.logins, found.baseline_clients, found.baseline_records, thresholds.baseline_days),
        *logins_at_unusual_hours(found.logins, thresholds.work_hours, found.baseline_hours),
    ]
    return AuditReport(
        env=env.name, start=start, end=end, log_dir=str(folder), files=len(stats.files), records=stats.records,
        skipped=stats.skipped, audit_source=source, connections=_connections(found.logins),
        failed_logins=sorted(found.failures, key=lambda f: f.time),
        role_changes=[e for e in audit if e.kind == events.ROLE], ddl=[e for e in audit if e.kind == events.DDL],
        writes=_writes(audit), superusers=_superuser_activity(superusers, found.logins, audit), unusual=unusual,
        notes=notes,
    )


def audit_report(settings: Settings, env: Environment, *, start: date, end: date,
                 thresholds: Thresholds = Thresholds(), target: Target | None = None) -> AuditReport:
    """Read the environment's logs for the period (plus the baseline before it) and build the report; its
    catalog reads go to a replica when routing chose one (`target`), the logs read are the primary's."""
    if end < start:
        raise UsageError(f"end {end} is before start {start}")
    folder = log_dir(settings, env)
    superusers, problem = _superusers(settings, env, target)
    since = datetime.combine(start - timedelta(days=thresholds.baseline_days), time(), UTC)
    stats = ReadStats(files=[])
    try:
        report = build(env, folder, records(folder, since, stats), stats, start=start, end=end,
                       superusers=superusers, thresholds=thresholds)
    except PermissionError as exc:
        raise UnavailableError(f"cannot read the server's logs: {exc}",
                               hint="run as the server's OS user or root, or copy the logs to audit_log_dir") from None
    if problem:
        report.notes.append(problem)
    return report

"""What each dashboard page shows, read through the services the CLI uses: one bounded monitoring session per page,
each part read on its own so that a part that cannot be read (a locked table, a stopped server, a missing
repository) is named on the page instead of failing it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from cuisine_db import sql
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError

T = TypeVar("T")

# Every statement of a page: a page never waits long, and never behind an ACCESS EXCLUSIVE lock.
STATEMENT_TIMEOUT = "4s"
LOCK_TIMEOUT = "500ms"
# Libpq options for every session this process opens, the services' own included (postgres/connect.py passes
# no options, so libpq reads PGOPTIONS): the same bounds, and read-only transactions.
PGOPTIONS = (f"-c statement_timeout={STATEMENT_TIMEOUT} -c lock_timeout={LOCK_TIMEOUT} "
             "-c default_transaction_read_only=on")
COMMAND = "dashboard"
# Parts that change slowly and cost most on a large database (the index catalog of every index, the security
# check): read at most once a minute for all viewers, the page saying how old they are.
SLOW_SECONDS = 60.0
# The archive's lag is recorded for its chart at most once a minute, and kept a week (monitor/store.py).
ARCHIVE_LAG_EVERY = 60.0


@dataclass(slots=True)
class Reading:
    """One page's reads: what could not be read, and the session they share (None: the server is down)."""

    settings: Settings
    env: Environment
    conn: psycopg.Connection[Any] | None
    down: str | None = None
    unread: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds each part took
    ages: dict[str, float] = field(default_factory=dict)  # seconds since a shared slow part was read

    def part(self, what: str, read: Callable[[], T], *, needs_server: bool = True) -> T | None:
        """`read()`, or None with a line saying why `what` could not be read."""
        if needs_server and self.conn is None:
            self.unread.append(f"{what}: the server is not answering ({self.down})")
            return None
        started = time.perf_counter()
        try:
            return read()
        except psycopg.errors.LockNotAvailable:
            self.unread.append(f"{what}: a table it reads is locked (gave up after {LOCK_TIMEOUT}); "
                               f"make db-show-locks env={self.env.name} shows who holds it")
        except psycopg.errors.QueryCanceled:
            self.unread.append(f"{what}: no answer within {STATEMENT_TIMEOUT}")
        except psycopg.errors.InsufficientPrivilege as exc:
            self.unread.append(f"{what}: the monitoring role may not read it ({_first_line(exc)}); "
                               f"cuisine-db security setup-roles --env {self.env.name}")
        except psycopg.Error as exc:
            self.unread.append(f"{what}: {_first_line(exc)}")
        except CuisineDbError as exc:
            self.unread.append(f"{what}: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        except OSError as exc:
            self.unread.append(f"{what}: {exc.strerror or exc}")
        except sqlite3.Error as exc:
            self.unread.append(f"{what}: the local monitoring store: {exc}")
        finally:
            self.timings[what] = time.perf_counter() - started
        if self.conn is not None and self.conn.closed:
            self.conn = None
            self.down = "the connection was lost"
        return None


    def slow_part(self, what: str, slow: Slow | None, read: Callable[[], T], *, needs_server: bool = True) -> T | None:
        """Like part(), but through `slow` when given: a reading shared by every viewer and at most
        `slow.seconds` old, its age kept in `ages`."""
        if slow is None:
            return self.part(what, read, needs_server=needs_server)
        shared = self.part(what, lambda: slow.get(what, read), needs_server=needs_server)
        if shared is None:
            return None
        value, age = shared
        self.ages[what] = age
        return value


class _Entry:
    __slots__ = ("lock", "read_at", "refreshing", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: Any = None
        self.read_at: float | None = None
        self.refreshing = False


class Slow:
    """Slow parts shared by every viewer of this process, each read at most once per `seconds`. Once a part is
    older than that, the next viewer still gets it (with its age) and a thread reads it anew in the background,
    so no viewer waits for a slow read but the very first. A failed read is never kept: the next viewer reads
    again and sees why. Each read must open its own session (the background thread outlives the page's)."""

    def __init__(self, seconds: float = SLOW_SECONDS) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.entries: dict[str, _Entry] = {}

    def get(self, key: str, read: Callable[[], T]) -> tuple[T, float]:
        """(the value, seconds since it was read)."""
        with self.lock:
            entry = self.entries.setdefault(key, _Entry())
        with entry.lock:  # held through a read only for the first one: later reads happen in the background
            if entry.read_at is None:
                entry.value = read()
                entry.read_at = time.monotonic()
            elif time.monotonic() - entry.read_at > self.seconds and not entry.refreshing:
                entry.refreshing = True
                threading.Thread(target=self._refresh, args=(entry, read), daemon=True,
                                 name=f"dashboard: {key}").start()
            return entry.value, time.monotonic() - entry.read_at

    @staticmethod
    def _refresh(entry: _Entry, read: Callable[[], Any]) -> None:
        try:
            value = read()
        except Exception:  # forgotten: the next viewer reads in the foreground and sees why
            with entry.lock:
                entry.value, entry.read_at, entry.refreshing = None, None, False
            return
        with entry.lock:
            entry.value, entry.read_at, entry.refreshing = value, time.monotonic(), False


def _in_own_session(settings: Settings, env: Environment, read: Callable[[Reading], T]) -> T:
    """`read` on a session of its own (a shared slow part, possibly read in the background)."""
    with reading(settings, env) as r:
        if r.conn is None:
            raise CuisineDbError(f"the server is not answering ({r.down})")
        return read(r)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def reading(settings: Settings, env: Environment) -> Iterator[Reading]:
    """A page's session as the monitoring role, never starting a stopped server, with its timeouts set."""
    try:
        conn = connect(settings, env, COMMAND, purpose="monitoring", start=False)
    except CuisineDbError as exc:
        yield Reading(settings, env, None, down=exc.message)
        return
    try:
        conn.execute(sql.load("diagnose/set_timeouts"),
                     {"statement_timeout": STATEMENT_TIMEOUT, "lock_timeout": LOCK_TIMEOUT})
        yield Reading(settings, env, conn)
    finally:
        conn.close()


# --- Overview -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the overview: a runbook check, its colour, what it says, where to look and what fixes it."""

    name: str
    status: str  # green, amber, red or grey (could not be read)
    summary: str
    page: str
    command: str


# db-monitor's check groups -> the page that shows them, and the make line to look closer or act.
MONITOR_PAGES: dict[str, tuple[str, str]] = {
    "connection pool usage": ("live", "make db-connections env={env}"),
    "transaction volume": ("database", "make db-monitor env={env}"),
    "query performance": ("database", "make db-slow-queries env={env}"),
    "storage utilization": ("database", "make db-table-sizes env={env}"),
    "wraparound": ("database", "make db-vacuum-analyze env={env} table=TABLE"),
    "replication": ("live", "make db-replicas env={env}"),
    "archiving": ("recovery", "make db-wal-status env={env}"),
    "long-running queries": ("live", "make db-show-locks env={env}"),
}
COLOURS = {"ok": "green", "warning": "amber", "critical": "red", "info": "green", "error": "red"}


def _figures(r: Reading) -> Any:
    from cuisine_db.monitor.figures import gather, read_counters

    assert r.conn is not None  # noqa: S101 - part() only calls this with a session
    return gather(r.settings, r.conn, r.env, read_counters(r.conn), None)


def _forecast(settings: Settings, env: Environment) -> Any:
    from cuisine_db.monitor import growth
    from cuisine_db.monitor.store import Store, store_path

    path = store_path(settings, env)
    if not path.exists():  # reading must not create the store
        return growth.forecast([], None)
    snapshots = Store(path).snapshots(time.time() - 30 * growth.DAY)
    free = growth.free_bytes(snapshots[-1], env) if snapshots else None
    return growth.forecast([(s.taken_at, s.database_bytes) for s in snapshots], free)


def _status_of(findings: list[Any]) -> str:
    from cuisine_db.findings import worst

    level = worst(findings)
    return COLOURS.get(level or "ok", "green")


@dataclass(frozen=True, slots=True)
class Overview:
    env: str
    checks: list[Check]
    unread: list[str]
    ages: dict[str, float] = field(default_factory=dict)  # shared slow parts: seconds since they were read
    timings: dict[str, float] = field(default_factory=dict)  # seconds each part took

    @property
    def status(self) -> str:
        colours = [c.status for c in self.checks]
        for colour in ("red", "grey", "amber"):
            if colour in colours:
                return colour
        return "green"


def overview(settings: Settings, env: Environment, *, slow: Slow | None = None) -> Overview:
    """The runbook's checks at a glance; with `slow`, the security check is shared and at most a minute old."""
    from cuisine_db.backup import status as backup_status
    from cuisine_db.monitor.health_checks import evaluate
    from cuisine_db.security.cis_checks import security_check

    e = env.name
    checks: list[Check] = []
    with reading(settings, env) as r:
        checks.append(Check("server", "green" if r.conn else "red",
                            f"answering as {r.conn.info.user}" if r.conn else (r.down or "down"), "live",
                            f"make cluster-status env={e}" if r.conn else f"make cluster-up env={e}"))
        figures = r.part("db-monitor's figures", lambda: _figures(r))
        forecast = r.part("growth snapshots", lambda: _forecast(settings, env), needs_server=False)
        if figures is not None and forecast is not None:
            statuses, _ = evaluate(figures, forecast, env.monitoring)
            for status in statuses:
                page, command = MONITOR_PAGES.get(status.name, ("overview", "make db-monitor env={env}"))
                checks.append(Check(status.name, COLOURS.get(status.status, "amber"), status.summary, page,
                                    command.format(env=e)))
        else:
            checks.append(Check("db-monitor checks", "grey", "could not be read (below)", "overview",
                                f"make db-monitor env={e}"))
        up = r.conn is not None
    backups = r.part("backup status", lambda: backup_status.status(settings, env), needs_server=False)
    if backups is not None:
        full_findings = [f for f in backups.findings if f.check == "full backup"]
        wal_findings = [f for f in backups.findings if f.check != "full backup"]
        age = f"{backups.full_age_hours:.1f} h ago" if backups.full_age_hours is not None else "none"
        checks.append(Check("full backup", _status_of(full_findings),
                            full_findings[0].evidence if full_findings else f"newest {backups.newest_full} ({age})",
                            "recovery", full_findings[0].fix if full_findings else f"make db-backup env={e} type=full"))
        checks.append(Check("WAL archive", _status_of(wal_findings),
                            "; ".join(f.evidence for f in wal_findings[:2]) or backups.wal.summary, "recovery",
                            wal_findings[0].fix if wal_findings else f"make db-wal-status env={e}"))
    else:
        checks.append(Check("backups", "grey", "could not be read (below)", "recovery",
                            f"make db-backup-status env={e}"))
    if up:
        security = r.slow_part("security check", slow, lambda: security_check(settings, env), needs_server=False)
    else:
        security = None
        r.unread.append(f"security check: the server is not answering ({r.down})")
    if security is not None:
        highs = [f for f in security if f.severity in ("error", "critical")]
        mediums = [f for f in security if f.severity == "warning"]
        summary = (f"{len(highs)} high: {highs[0].check} ({highs[0].subject})" if highs
                   else f"no high findings; {len(mediums)} hardening warning(s)")
        checks.append(Check("security check", "red" if highs else "amber" if mediums else "green", summary,
                            "overview", f"make db-security-check env={e}"))
    return Overview(env=e, checks=checks, unread=r.unread, ages=r.ages, timings=r.timings)


# --- Recovery -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupRow:
    name: str
    type: str
    taken_at: datetime
    size: int
    duration_s: float | None
    verified: str  # "ok", "failed", "never", "damaged"
    verified_at: datetime | None
    test_restore: str
    rto_s: float | None
    damaged: tuple[str, ...] = ()  # each damaged record: its file and why


@dataclass(frozen=True, slots=True)
class Drill:
    at: str
    ok: bool
    recovery_seconds: float | None
    data_loss_seconds: float | None
    incident: str | None


@dataclass(frozen=True, slots=True)
class Recovery:
    env: str
    backups: list[BackupRow]
    wal: Any | None  # backup.wal.status.WalStatus
    window_from: datetime | None
    now: datetime
    retention: Any | None  # backup.retention.ExpireReport (a dry run)
    drill: Drill | None
    unread: list[str]
    backup_marks: list[tuple[datetime, str]] = field(default_factory=list)  # physical backups on the timeline
    # The archive's lag over the last week: (when, seconds since the newest archived segment, segments waiting).
    lag: list[tuple[datetime, float | None, int | None]] = field(default_factory=list)

    @property
    def lag_points(self) -> list[tuple[datetime, float]]:
        """Minutes since the newest archived segment, for the chart."""
        return [(at, age / 60) for at, age, _ in self.lag if age is not None]

    @property
    def most_waiting(self) -> int | None:
        waiting = [w for _, _, w in self.lag if w is not None]
        return max(waiting) if waiting else None


def _check(check: Any, damage: Any = None) -> tuple[str, datetime | None, float | None]:
    if damage is not None:
        return "damaged", None, None
    if check is None:
        return "never", None, None
    return ("ok" if check.ok else "failed"), check.at, check.seconds


def _last_drill(settings: Settings, env: Environment) -> Drill | None:
    from cuisine_db.ops import journal

    path = journal.journal_path(settings, env)
    if not path.exists():
        return None
    drills = [entry for entry in journal.read(path) if entry.get("command") == "dr-drill"]
    if not drills:
        return None
    last = drills[-1]
    details = last.get("details") or {}
    return Drill(at=str(last.get("at", "")), ok=last.get("outcome") == "ok",
                 recovery_seconds=details.get("recovery_seconds"),
                 data_loss_seconds=details.get("data_loss_seconds"), incident=details.get("incident"))


def _archive_lag(settings: Settings, env: Environment, wal: Any, every: float) -> list[tuple[datetime, float | None,
                                                                                          int | None]]:
    """Record this reading of the archive (at most one row per `every` seconds, in the monitoring store, which is
    this machine's file: the database is only read) and return the last week's rows."""
    from cuisine_db.monitor.store import Store, store_path

    store = Store(store_path(settings, env))
    if wal is not None:
        stats = wal.server
        now = stats.now if stats is not None else datetime.now(UTC)
        last = (stats.last_archived_time if stats is not None and stats.last_archived_time
                else wal.last_archived_at)
        age = max(0.0, (now - last).total_seconds()) if last is not None else None
        store.add_archive_lag(now.timestamp(), age, wal.behind, every=every)
    week = time.time() - 7 * 86_400
    return [(datetime.fromtimestamp(at, UTC), age, waiting) for at, age, waiting in store.archive_lag(week)]


def recovery(settings: Settings, env: Environment, *, lag_every: float = ARCHIVE_LAG_EVERY) -> Recovery:
    """Backups, the archive, the window and the last drill; each reading of the archive adds to its lag's history
    (at most one row per `lag_every` seconds)."""
    from cuisine_db.backup import catalog, retention
    from cuisine_db.backup.manifest import TEST_RESTORE, VERIFICATION
    from cuisine_db.backup.wal import status as wal_status

    r = Reading(settings, env, None)
    entries = r.part("backup catalog", lambda: catalog.list_backups(settings, env), needs_server=False) or []
    rows = []
    for entry in reversed(entries):
        verified, verified_at, _ = _check(entry.verification, entry.damage(VERIFICATION))
        restored, _, rto = _check(entry.test_restore, entry.damage(TEST_RESTORE))
        rows.append(BackupRow(entry.name, entry.type, entry.taken_at, entry.size, entry.duration_s, verified,
                              verified_at, restored, rto, tuple(f"{d.where}: {d.why}" for d in entry.damaged)))
    wal = r.part("WAL archive", lambda: wal_status.status(settings, env), needs_server=False)
    plan = r.part("retention plan", lambda: retention.expire(settings, env, dry_run=True), needs_server=False)
    drill = r.part("last DR drill", lambda: _last_drill(settings, env), needs_server=False)
    lag = r.part("archive lag history", lambda: _archive_lag(settings, env, wal, lag_every), needs_server=False)
    from cuisine_db.backup.backup_names import PHYSICAL_TYPES

    marks = [(entry.manifest.finished_at, entry.name) for entry in entries
             if entry.type in PHYSICAL_TYPES and entry.manifest is not None]
    return Recovery(env=env.name, backups=rows, wal=wal, window_from=plan.window_before if plan else None,
                    now=datetime.now(UTC), retention=plan, drill=drill, unread=r.unread, backup_marks=marks,
                    lag=lag or [])


# --- Database -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Database:
    env: str
    statements: list[Any] | None  # diagnose.pgss.Statement, texts redacted
    index_findings: list[Any] | None
    tables: list[Any] | None  # diagnose.sizes.TableSize
    growth: Any | None  # monitor.growth.GrowthReport-like: forecast and table series
    wraparound: list[Any] | None
    horizon: list[Any] | None
    dead_tables: list[Any] | None
    config: list[Any] | None  # diagnose.config_advice.ConfigRecommendation
    unread: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    ages: dict[str, float] = field(default_factory=dict)  # shared slow parts: seconds since they were read

    @property
    def daily_points(self) -> list[tuple[datetime, float]]:
        """The database's size by day, for the chart."""
        if self.growth is None:
            return []
        return [(datetime(day.year, day.month, day.day, tzinfo=UTC), float(size)) for day, size in self.growth.daily]

    @property
    def series(self) -> dict[tuple[str, str], list[float]]:
        """Each table's size across the snapshots, for its sparkline."""
        if self.growth is None:
            return {}
        return {key: [float(b) for _, b in points] for key, points in self.growth.tables.items()}


@dataclass(frozen=True, slots=True)
class Growth:
    forecast: Any
    daily: list[tuple[Any, int]]
    tables: dict[tuple[str, str], list[tuple[float, int]]]


def _statements(r: Reading, limit: int) -> list[Any]:
    from cuisine_db.diagnose import pgss
    from cuisine_db.diagnose.query_text import shown

    assert r.conn is not None  # noqa: S101 - part() only calls this with a session
    found = pgss.locate(r.conn, r.env)
    return [replace(s, query=shown(s.query, 400)) for s in pgss.top(r.conn, found, limit)]


def statement_text(settings: Settings, env: Environment, queryid: int) -> str | None:
    """The normalized text of one pg_stat_statements entry (for its plan), None when it is not among the top."""
    from cuisine_db.diagnose import pgss

    with reading(settings, env) as r:
        if r.conn is None:
            raise CuisineDbError(f"the server is not answering ({r.down})")
        found = pgss.locate(r.conn, env)
        for statement in pgss.top(r.conn, found, 100):
            if statement.queryid == queryid:
                return statement.query
    return None


def _index_findings(r: Reading) -> list[Any]:
    from cuisine_db.diagnose import index_checks as checks
    from cuisine_db.diagnose.analysis import read_catalog

    assert r.conn is not None  # noqa: S101 - part() only calls this with a session
    catalog = read_catalog(r.conn, None)
    env = r.env
    unused = checks.unused_indexes(catalog.indexes, catalog.foreign_keys, catalog.window)
    return [
        *checks.invalid_indexes(catalog.indexes, catalog.being_built),
        *checks.duplicate_indexes(catalog.indexes),
        *checks.unused_index_findings(unused, catalog.window, env.name, min_days=env.unused_index_min_days),
        *checks.overlapping_indexes(catalog.indexes),
        *checks.unindexed_foreign_keys(catalog.foreign_keys, catalog.indexes, env.name),
        *checks.seq_scan_heavy_tables(catalog.tables, env.name, large_rows=env.large_table_rows),
        *checks.bloated_indexes(catalog.bloat),
        *checks.stale_statistics(catalog.tables, env.name),
    ]


def _growth(settings: Settings, env: Environment) -> Growth:
    from cuisine_db.monitor import growth
    from cuisine_db.monitor.store import Store, store_path

    path = store_path(settings, env)
    if not path.exists():
        return Growth(growth.forecast([], None), [], {})
    store = Store(path)
    since = time.time() - 30 * growth.DAY
    snapshots = store.snapshots(since)
    free = growth.free_bytes(snapshots[-1], env) if snapshots else None
    return Growth(growth.forecast([(s.taken_at, s.database_bytes) for s in snapshots], free),
                  growth.daily_sizes(snapshots), store.table_series(since))


def _config(r: Reading) -> list[Any]:
    from cuisine_db.diagnose import config_advice

    facts, _ = config_advice.gather(r.settings, r.env, conn=r.conn, ram="4GB" if not r.env.is_local else None)
    return config_advice.recommend_from(facts, r.env.name)


def _rows(r: Reading, row: type[sql.Row], name: str, params: dict[str, Any] | None = None) -> list[sql.Row]:
    assert r.conn is not None  # noqa: S101 - part() only calls this with a session
    return sql.rows(r.conn, row, sql.load(name), params)


def database(settings: Settings, env: Environment, *, tables: int = 30, statements: int = 15,
             slow: Slow | None = None) -> Database:
    """Where the time goes and how big things are. Only the largest tables' sizes are measured (the candidates
    pg_class's page counts put first, as the metrics do: no stat of every file); with `slow`, the index advice
    (a read of every index) and the configuration advice are shared and about a minute old at most."""
    from cuisine_db.monitor.figures import DeadTable, HorizonHolder, WraparoundAge
    from cuisine_db.monitor.server_stats import read_largest_tables

    t = env.monitoring
    with reading(settings, env) as r:
        top = r.part("top queries (pg_stat_statements)", lambda: _statements(r, statements))
        advice = r.slow_part("index advice", slow,
                             (lambda: _index_findings(r)) if slow is None
                             else lambda: _in_own_session(settings, env, _index_findings))
        sizes = r.part("table sizes", lambda: read_largest_tables(r.conn, tables))  # type: ignore[arg-type]
        wrap = r.part("freeze ages", lambda: _rows(r, WraparoundAge, "monitor/wraparound"))
        horizon = r.part("xmin horizon", lambda: _rows(r, HorizonHolder, "monitor/horizon_holders"))
        dead = r.part("dead rows", lambda: _rows(r, DeadTable, "monitor/dead_tuples",
                                                 {"min_rows": t.dead_rows_minimum,
                                                  "min_share": t.dead_share_warning}))
        config = r.slow_part("configuration advice", slow,
                             (lambda: _config(r)) if slow is None else lambda: _in_own_session(settings, env, _config))
    grown = r.part("growth snapshots", lambda: _growth(settings, env), needs_server=False)
    return Database(env.name, top, advice, sizes, grown, wrap, horizon, dead, config, r.unread, r.timings, r.ages)


# --- Live -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Live:
    env: str
    usage: Any | None  # diagnose.connections.ConnectionUsage
    roots: list[Any] | None  # diagnose.locks.BlockNode, root blockers first
    waiting: int
    long_transactions: list[Any]
    replication: Any | None  # replicas.lag.ReplicationReport
    unread: list[str]


def live(settings: Settings, env: Environment) -> Live:
    from cuisine_db.diagnose.connections import usage_from
    from cuisine_db.diagnose.locks import read_tree
    from cuisine_db.replicas.lag import measure

    with reading(settings, env) as r:
        usage = r.part("connections", lambda: usage_from(r.conn, env))  # type: ignore[arg-type]
        tree = r.part("blocking tree", lambda: read_tree(r.conn))  # type: ignore[arg-type]
        replication = r.part("replicas and lag", lambda: measure(settings, env, command=COMMAND))
    threshold = env.monitoring.long_transaction_seconds
    long = sorted((s for s in usage.sessions if (s.xact_seconds or 0.0) >= min(threshold, 60.0)),
                  key=lambda s: -(s.xact_seconds or 0.0)) if usage else []
    return Live(env.name, usage, tree[0] if tree else None, tree[1] if tree else 0, long, replication, r.unread)


# --- Incidents ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentView:
    incident: Any  # ops.incidents.Incident
    entries: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Incidents:
    env: str
    open: list[IncidentView]
    recent: list[IncidentView]
    unread: list[str]


def incidents(settings: Settings, env: Environment, *, recent: int = 10) -> Incidents:
    from cuisine_db.ops import incidents as store

    r = Reading(settings, env, None)
    found = r.part("incidents", lambda: store.all_incidents(settings), needs_server=False) or []
    mine = sorted((i for i in found if i.covers(env.name)), key=lambda i: i.opened_at, reverse=True)

    def view(incident: Any) -> IncidentView:
        entries = r.part(f"journal of {incident.id}", lambda: store.linked_entries(settings, incident),
                         needs_server=False) or []
        return IncidentView(incident, entries)

    return Incidents(env.name, [view(i) for i in mine if i.status == "open"],
                     [view(i) for i in mine if i.status != "open"][:recent], r.unread)

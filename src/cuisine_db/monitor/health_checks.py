"""The monitoring checks: the runbook's four daily ones and those that take databases down, one function each.

Each takes the figures and keyword thresholds (defaults here; `[environments.NAME.monitoring]` overrides them)
and returns findings. `evaluate()` runs them all and sums each group up in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from cuisine_db.config import Monitoring
from cuisine_db.diagnose import connections
from cuisine_db.findings import Finding, worst
from cuisine_db.humanize import duration, size
from cuisine_db.monitor.figures import WRAPAROUND_LIMIT, Figures, HorizonHolder, Rates
from cuisine_db.monitor.growth import Forecast

# Cache hit ratios mean little until the database has read a fair number of blocks.
_CACHE_MIN_READS = 10_000


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """One line of the monitoring summary: a group of checks, its worst finding, and its key figures."""

    name: str
    status: str  # ok, warning or critical
    summary: str


def transaction_volume(rates: Rates | None, *, rollback_ratio_warning: float = 0.05,
                       rollback_min_transactions: int = 100) -> list[Finding]:
    """A high share of rollbacks, and deadlocks, over the sampling window."""
    if rates is None:
        return []
    found = []
    if (rates.transactions >= rollback_min_transactions and rates.rollback_ratio is not None
            and rates.rollback_ratio >= rollback_ratio_warning):
        found.append(Finding(
            "transaction volume", "warning", "rollback ratio",
            f"{rates.rollback_ratio:.1%} of {rates.transactions} transactions rolled back in the last "
            f"{duration(rates.seconds)} ({rates.rollbacks_per_second:.1f}/s)",
            "find the failing statements in the server log (errors are logged) or the application's; "
            "a rollback per request often means an error the application retries"))
    if rates.deadlocks > 0:
        found.append(Finding(
            "transaction volume", "warning", "deadlocks",
            f"{rates.deadlocks} deadlock(s) in the last {duration(rates.seconds)}",
            "the server log names both statements (\"deadlock detected\"); make transactions take their locks "
            "in one order"))
    return found


def cache_hit(figures: Figures, *, warning: float = 0.95, critical: float = 0.90) -> list[Finding]:
    """The buffer cache hit ratio of the database since its statistics were reset."""
    ratio = figures.cache_hit_ratio
    if ratio is None or figures.counters.blks_read + figures.counters.blks_hit < _CACHE_MIN_READS:
        return []
    if ratio >= warning:
        return []
    return [Finding(
        "query performance", "critical" if ratio < critical else "warning", "cache hit ratio",
        f"{ratio:.1%} of block reads found in shared buffers ({figures.counters.blks_read:,} read from disk)",
        "the working set does not fit: review shared_buffers (25% of RAM, runbook), slow queries scanning "
        f"large tables (make db-slow-queries env={figures.env}), or add memory")]


def slow_statements(figures: Figures, *, mean_ms: float = 1000) -> list[Finding]:
    """Statements whose mean execution time is an outlier (pg_stat_statements)."""
    return [Finding(
        "query performance", "warning", f"statement {s.queryid}",
        f"mean {s.mean_ms:,.0f} ms over {s.calls:,} call(s) (max {s.max_ms:,.0f} ms, threshold {mean_ms:,.0f} ms): "
        f"{s.query}",
        f"make db-explain query=\"...\" on it; make db-slow-queries env={figures.env} for the full list")
        for s in figures.slow_statements or []]


def storage(figures: Figures, forecast: Forecast, *, disk_free_warning: float = 0.20,
            disk_free_critical: float = 0.10, days_until_full_warning: float = 30,
            days_until_full_critical: float = 7) -> list[Finding]:
    """Free space on the data directory's filesystem, and the days left at the recent growth rate."""
    found = []
    fs = figures.filesystem
    fix = (f"make db-table-sizes env={figures.env} for the largest tables and their bloat; remove unneeded "
           "indexes, archive old data, or grow the volume")
    if fs is not None and fs.free_share < disk_free_warning:
        found.append(Finding(
            "storage utilization", "critical" if fs.free_share < disk_free_critical else "warning",
            f"filesystem of {fs.path}",
            f"{fs.free_share:.1%} free ({size(fs.free_bytes)} of {size(fs.total_bytes)})", fix))
    days = forecast.days_until_full
    if days is not None and days < days_until_full_warning:
        found.append(Finding(
            "storage utilization", "critical" if days < days_until_full_critical else "warning",
            "days until the disk is full",
            f"{days:.1f} days at {size(forecast.rate_bytes_per_day or 0)}/day over the last "
            f"{forecast.span_days:.1f} days", fix))
    return found


def dead_tuples(figures: Figures) -> list[Finding]:
    """Tables with a heavy share of dead rows (the query's thresholds already picked them)."""
    return [Finding(
        "storage utilization", "warning", f"table {t.schema}.{t.table_name}",
        f"{t.dead_rows:,} dead rows ({t.dead_share:.0%} of the table); last vacuumed "
        f"{duration(t.vacuumed_seconds) + ' ago' if t.vacuumed_seconds is not None else 'never'}",
        f"VACUUM (ANALYZE) {t.schema}.{t.table_name}; if it keeps coming back, something holds the horizon "
        "(see wraparound) or autovacuum is too slow for this table")
        for t in figures.dead_tables]


def _holders(holders: list[HorizonHolder]) -> str:
    if not holders:
        return "nothing holds the horizon back now"
    named = [f"{h.kind} {h.name} (xid age {h.xid_age:,})" if h.xid_age is not None else f"{h.kind} {h.name}"
             for h in holders[:3]]
    return "held back by: " + "; ".join(named)


def wraparound(figures: Figures, *, warning: float = 0.50, critical: float = 0.75) -> list[Finding]:
    """Transaction ID and MultiXact age of each database against the 2^31 limit, with what holds them back."""
    found = []
    for age in figures.wraparound:
        for kind, value in (("transaction ID", age.xid_age), ("MultiXact ID", age.mxid_age)):
            share = value / WRAPAROUND_LIMIT
            if share < warning:
                continue
            found.append(Finding(
                "wraparound", "critical" if share >= critical else "warning", f"database {age.database}",
                f"{kind} age {value:,} is {share:.0%} of the limit (the server stops accepting writes near it); "
                + _holders(figures.horizon),
                "end what holds the horizon back (old transactions, prepared transactions, unused replication "
                f"slots), then VACUUM (FREEZE) the oldest tables of {age.database}"))
    return found


def prepared_transactions(figures: Figures, *, seconds: float = 300) -> list[Finding]:
    """Forgotten two-phase transactions: they keep their locks and hold the horizon back across restarts."""
    return [Finding(
        "wraparound", "warning", f"prepared transaction {p.gid!r}",
        f"prepared {duration(p.prepared_seconds)} ago by {p.owner} in {p.database}, xid age {p.xid_age:,}",
        f"its coordinator should finish it: COMMIT PREPARED or ROLLBACK PREPARED {p.gid!r} (in {p.database})")
        for p in figures.prepared if p.prepared_seconds >= seconds]


def replication(figures: Figures, *, warning_seconds: float = 60, critical_seconds: float = 300,
                slot_retained_warning_bytes: int = 1024**3) -> list[Finding]:
    """Standbys falling behind, this standby's replay lag, and slots keeping WAL for absent consumers."""
    found = []
    lags = [(f"standby {r.name} ({r.client})", r.lag_seconds) for r in figures.replicas]
    if figures.standby.in_recovery:
        lags.append(("this standby's replay", figures.standby.replay_lag_seconds))
    for subject, lag in lags:
        if lag is not None and lag >= warning_seconds:
            found.append(Finding(
                "replication", "critical" if lag >= critical_seconds else "warning", subject,
                f"replay is {duration(lag)} behind",
                "check the standby's disk and network, and long queries on it delaying replay"))
    for slot in figures.slots:
        if slot.retained_bytes >= slot_retained_warning_bytes or slot.wal_status == "lost":
            state = "active" if slot.active else "inactive: no consumer is attached"
            found.append(Finding(
                "replication", "critical" if slot.wal_status in ("unreserved", "lost") else "warning",
                f"replication slot {slot.name}",
                f"keeps {size(slot.retained_bytes)} of WAL ({state}; wal_status {slot.wal_status or '-'})",
                f"reattach its consumer, or drop it if unused: SELECT pg_drop_replication_slot('{slot.name}')"))
    return found


def archiving(figures: Figures) -> list[Finding]:
    """A failing archive_command: WAL piles up in pg_wal and point-in-time recovery falls behind."""
    archiver = figures.archiver
    if not archiver.failing:
        return []
    return [Finding(
        "archiving", "critical", f"WAL archiving ({archiver.last_failed_wal or 'unknown segment'})",
        f"the last attempt failed {duration(archiver.last_failed_seconds)} ago; {archiver.failed_count} failure(s), "
        f"{archiver.archived_count} archived since the statistics were reset",
        "the server log shows archive_command's error; fix the command or the repository it writes to "
        "(WAL stays in pg_wal until it succeeds)")]


def long_queries(figures: Figures, *, warning_seconds: float = 300,
                 critical_seconds: float = 1800) -> list[Finding]:
    """Queries running longer than the thresholds."""
    return [Finding(
        "long-running queries", "critical" if q.seconds >= critical_seconds else "warning",
        f"pid {q.pid} ({q.username}@{q.database}, application {q.application or '(none)'!r})",
        f"running for {duration(q.seconds)}{', waiting on ' + q.wait_event_type if q.wait_event_type else ''}: "
        f"{q.query}",
        f"make db-show-locks env={figures.env} if it waits; end it with make db-terminate-query "
        f"env={figures.env} pid={q.pid}")
        for q in figures.long_queries if q.seconds >= warning_seconds]


def evaluate(figures: Figures, forecast: Forecast, thresholds: Monitoring) -> tuple[list[CheckStatus], list[Finding]]:
    """Run every check with the environment's thresholds; a summary line per group and all findings."""
    t = thresholds
    usage = figures.connections
    groups: list[tuple[str, list[Finding], str]] = [
        ("connection pool usage",
         connections.slot_usage(usage, warning=t.connections_warning, critical=t.connections_critical)
         + connections.idle_in_transaction(usage, seconds=t.idle_in_transaction_seconds)
         + connections.long_transactions(usage, seconds=t.long_transaction_seconds),
         _connections_summary(figures)),
        ("transaction volume",
         transaction_volume(figures.rates, rollback_ratio_warning=t.rollback_ratio_warning,
                            rollback_min_transactions=t.rollback_min_transactions),
         _volume_summary(figures.rates)),
        ("query performance",
         cache_hit(figures, warning=t.cache_hit_warning, critical=t.cache_hit_critical)
         + slow_statements(figures, mean_ms=t.slow_query_mean_ms),
         _performance_summary(figures, t.slow_query_mean_ms)),
        ("storage utilization",
         storage(figures, forecast, disk_free_warning=t.disk_free_warning, disk_free_critical=t.disk_free_critical,
                 days_until_full_warning=t.days_until_full_warning,
                 days_until_full_critical=t.days_until_full_critical) + dead_tuples(figures),
         _storage_summary(figures, forecast)),
        ("wraparound",
         wraparound(figures, warning=t.wraparound_warning, critical=t.wraparound_critical)
         + prepared_transactions(figures, seconds=t.prepared_transaction_seconds),
         _wraparound_summary(figures)),
        ("replication",
         replication(figures, warning_seconds=t.replication_lag_warning_seconds,
                     critical_seconds=t.replication_lag_critical_seconds,
                     slot_retained_warning_bytes=t.slot_retained_warning_bytes),
         _replication_summary(figures)),
        ("archiving", archiving(figures), _archiving_summary(figures)),
        ("long-running queries",
         long_queries(figures, warning_seconds=t.long_query_warning_seconds,
                      critical_seconds=t.long_query_critical_seconds),
         _long_summary(figures, t.long_query_warning_seconds)),
    ]
    statuses = [CheckStatus(name, _status(found), summary) for name, found, summary in groups]
    return statuses, [finding for _, found, _ in groups for finding in found]


def _status(found: list[Finding]) -> str:
    level = worst(found)
    if level in ("error", "critical"):
        return "critical"
    return "warning" if level == "warning" else "ok"


def _connections_summary(f: Figures) -> str:
    u = f.connections
    oldest = duration(u.oldest_transaction.xact_seconds) if u.oldest_transaction else "none"
    return (f"{u.in_use} of {u.available} slots ({u.share:.0%}); {len(u.idle_in_transaction)} idle in transaction; "
            f"oldest transaction {oldest}")


def _volume_summary(rates: Rates | None) -> str:
    if rates is None:
        return "not sampled"
    ratio = f"{rates.rollback_ratio:.1%}" if rates.rollback_ratio is not None else "-"
    return (f"{rates.commits_per_second:.1f} commits/s, {rates.rollbacks_per_second:.1f} rollbacks/s ({ratio}), "
            f"{rates.deadlocks} deadlocks over {duration(rates.seconds)} ({rates.source})")


def _performance_summary(f: Figures, mean_ms: float) -> str:
    ratio = f.cache_hit_ratio
    hit = f"cache hit {ratio:.2%}" if ratio is not None else "cache hit -"
    if f.slow_statements is None:
        return f"{hit}; slow statements not checked ({f.statements_note})"
    return f"{hit}; {len(f.slow_statements)} statement(s) with mean ≥ {mean_ms:,.0f} ms"


def _storage_summary(f: Figures, forecast: Forecast) -> str:
    parts = [f"database {size(f.database_bytes)}"]
    if f.filesystem is not None:
        parts.append(f"filesystem {f.filesystem.free_share:.0%} free ({size(f.filesystem.free_bytes)})")
    if forecast.days_until_full is not None:
        parts.append(f"full in {forecast.days_until_full:.0f} days")
    parts.append(f"{len(f.dead_tables)} table(s) with heavy dead rows")
    return "; ".join(parts)


def _wraparound_summary(f: Figures) -> str:
    if not f.wraparound:
        return "-"
    xid = max(f.wraparound, key=lambda a: a.xid_age)
    mxid = max(f.wraparound, key=lambda a: a.mxid_age)
    return (f"oldest xid age {xid.xid_age:,} ({xid.database}), mxid age {mxid.mxid_age:,}; "
            f"{_holders(f.horizon)}")


def _replication_summary(f: Figures) -> str:
    if f.standby.in_recovery:
        return f"standby, replay lag {duration(f.standby.replay_lag_seconds)}; {len(f.slots)} slot(s)"
    lags = [r.lag_seconds for r in f.replicas if r.lag_seconds is not None]
    lag = f", max lag {duration(max(lags))}" if lags else ""
    return f"{len(f.replicas)} standby(s) streaming{lag}; {len(f.slots)} slot(s)"


def _archiving_summary(f: Figures) -> str:
    a = f.archiver
    if a.archive_mode == "off":
        return "archive_mode is off"
    return f"{a.archived_count} archived, {a.failed_count} failed"


def _long_summary(f: Figures, seconds: float) -> str:
    over = [q for q in f.long_queries if q.seconds >= seconds]
    if not over:
        return f"none over {duration(seconds)}"
    return f"{len(over)} over {duration(seconds)}, longest {duration(max(q.seconds for q in over))}"

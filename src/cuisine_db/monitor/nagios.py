"""Nagios-style output for any scheduler: one status line with performance data, and the plugin exit codes."""

from __future__ import annotations

from cuisine_db.findings import SEVERITIES
from cuisine_db.monitor.service import MonitorReport

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
CODES = {"ok": OK, "warning": WARNING, "critical": CRITICAL}


def _label(text: str) -> str:
    # Performance-data labels may not hold quotes or '='.
    return "".join(char if char.isalnum() or char in "_-." else "_" for char in text)


def perfdata(report: MonitorReport) -> str:
    """label=value;warn;crit;min;max for the figures a graphing add-on would plot."""
    f = report.figures
    t = f.connections
    items = [f"connections={t.in_use};;;0;{t.available}"]
    if f.rates is not None:
        items += [f"commits_per_s={f.rates.commits_per_second:.2f}",
                  f"rollbacks_per_s={f.rates.rollbacks_per_second:.2f}", f"deadlocks={f.rates.deadlocks}"]
    if f.cache_hit_ratio is not None:
        items.append(f"cache_hit={f.cache_hit_ratio:.4f};;;0;1")
    items.append(f"database_bytes={f.database_bytes}B")
    if f.filesystem is not None:
        items.append(f"disk_free={f.filesystem.free_share * 100:.1f}%;;;0;100")
    if f.wraparound:
        items.append(f"xid_age={max(a.xid_age for a in f.wraparound)}")
    longest = max((q.seconds for q in f.long_queries), default=0.0)
    items.append(f"longest_query={longest:.1f}s")
    for replica in f.replicas:
        if replica.lag_seconds is not None:
            items.append(f"lag_{_label(replica.name)}={replica.lag_seconds:.1f}s")
    return " ".join(items)


def status_line(report: MonitorReport) -> str:
    """`CUISINE-DB WARNING - production: 1 warning: connection pool usage (8 of 9 slots) | connections=8;;;0;9 ...`"""
    label = report.status.upper()
    # The worst first: a scheduler's notification shows only the start of the line.
    problems = sorted((f for f in report.findings if f.severity != "info"),
                      key=lambda f: SEVERITIES.index(f.severity), reverse=True)
    if problems:
        counts = [f"{sum(1 for f in problems if f.severity == level)} {level}" for level in ("critical", "warning")
                  if any(f.severity == level for f in problems)]
        first = "; ".join(f"{f.check} ({f.subject})" for f in problems[:3])
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        text = f"{report.env}: {', '.join(counts)}: {first}{more}"
    else:
        text = f"{report.env}: all {len(report.checks)} checks ok"
    return f"CUISINE-DB {label} - {text} | {perfdata(report)}"


def unknown_line(env: str, message: str) -> str:
    return f"CUISINE-DB UNKNOWN - {env}: {message}"


def down_line(env: str, message: str, hint: str | None) -> str:
    """A server that is not running is the most critical finding there is, not a failure to judge."""
    advice = f" ({hint})" if hint else ""
    return f"CUISINE-DB CRITICAL - {env}: server down: {message}{advice}"

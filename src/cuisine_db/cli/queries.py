"""`cuisine-db slow-queries` and `cuisine-db explain` (db-slow-queries, db-explain): Query Optimization."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cuisine_db.cli.common import (
    EnvOption,
    JsonOption,
    ReplicaOption,
    YesOption,
    asker,
    environment,
    out,
    print_json,
    routed,
    say,
    settings,
)
from cuisine_db.cli.plan_text import plan_lines
from cuisine_db.cli.render import show_findings
from cuisine_db.durations import duration_ms
from cuisine_db.humanize import brief

# The services (and pglast) are imported by the commands that use them: every other command starts faster.


def duration(ms: float) -> str:
    """Milliseconds for people: 0.42 ms, 15 ms, 2.1 s, 45 min, 1.2 h."""
    return brief(ms / 1000)


def since(moment: datetime | None) -> str:
    if moment is None:
        return "unknown (pg_stat_statements before 1.9 keeps no reset time)"
    days = (datetime.now(UTC) - moment).total_seconds() / 86_400
    return f"{moment:%Y-%m-%d %H:%M} UTC ({days:.1f} days)"


def slow_queries(
    env: EnvOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1_000, help="How many statements.")] = 20,
    json: JsonOption = False,
    replica: ReplicaOption = None,
) -> None:
    """Statements with the most total execution time (pg_stat_statements), with their share, cache hit and temp use."""
    from cuisine_db.diagnose.slow_queries import slow_queries as top_queries

    chosen = environment(env)
    report = top_queries(settings(), chosen, limit, routed(chosen, replica, "db-slow-queries"))
    if json:
        print_json(report)
        return
    say(f"{chosen.name} (database {report.database}), pg_stat_statements {report.extension_version}: "
        f"statistics since {since(report.stats_reset)}"
        + (f"; {report.evicted:,} entries evicted (raise pg_stat_statements.max)" if report.evicted else ""))
    table = Table("#", "total", "share", "calls", "mean", "max", "rows", "cache hit", "temp blks", "query",
                  title=f"slowest statements on {chosen.name}")
    for rank, row in enumerate(report.statements, 1):
        hit = f"{row.cache_hit:.1%}" if row.cache_hit is not None else "-"
        temp = f"{row.temp_blks_read + row.temp_blks_written:,}" if row.temp_blks_written or row.temp_blks_read \
            else "-"
        nested = "" if row.toplevel in (True, None) else " (nested)"
        table.add_row(str(rank), duration(row.total_ms), f"{row.share:.1%}", f"{row.calls:,}", duration(row.mean_ms),
                      duration(row.max_ms), f"{row.rows:,}", hit, temp,
                      escape(" ".join(row.query.split())[:200]) + nested)
    out.print(table)
    if not report.statements:
        say("no statements recorded yet")
    else:
        say(f"explain one: make db-explain env={chosen.name} query='...' ($n parameters give the generic plan; "
            "params=v1,v2 runs it)")


def explain(
    query: Annotated[str, typer.Argument(help="One SQL statement; $1, $2 ... parameters allowed.")],
    env: EnvOption = None,
    plan_only: Annotated[bool, typer.Option("--plan-only", help="EXPLAIN without ANALYZE: do not run it.")] = False,
    params: Annotated[str | None, typer.Option("--params", help="Values for $1, $2 ..., comma-separated.")] = None,
    timeout: Annotated[str | None, typer.Option("--timeout", help="Statement timeout, e.g. 30s (default: the "
                                                "environment's explain_timeout_seconds).")] = None,
    json: JsonOption = False,
    yes: YesOption = False,
) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) as db-explain's own role, in a transaction always rolled back, with a diagnosis."""
    from cuisine_db.diagnose.explain import explain as explain_query

    chosen = environment(env)
    values = [part.strip() for part in params.split(",")] if params is not None else None
    result = explain_query(settings(), chosen, query, analyze=not plan_only, params=values,
                           timeout_ms=duration_ms(timeout) if timeout else None, yes=yes, ask=asker(chosen))
    if json:
        print_json(result)
        return
    how = "EXPLAIN ANALYZE, rolled back" if result.analyzed else ("generic plan" if result.generic else "plan only")
    timings = ""
    if result.planning_ms is not None:
        timings += f"; planning {duration(result.planning_ms)}"
    if result.execution_ms is not None:
        timings += f", execution {duration(result.execution_ms)}"
    say(f"{chosen.name}: {how}{timings}")
    for line in plan_lines(result.plan):
        out.print(escape(line))
    for note in result.notes:
        say(f"note: {note}")
    show_findings(result.findings, title="diagnosis", clean="nothing to flag in this plan")

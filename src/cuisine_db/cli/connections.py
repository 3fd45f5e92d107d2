"""`cuisine-db connections` (db-connections): the runbook's High Connection Usage steps in one view."""

from __future__ import annotations

import typer
from rich.columns import Columns
from rich.markup import escape
from rich.table import Table

from cuisine_db.cli.common import EnvOption, JsonOption, environment, out, print_json, say, settings
from cuisine_db.cli.render import show_findings
from cuisine_db.diagnose.connections import connection_usage, idle_in_transaction, long_transactions, slot_usage
from cuisine_db.humanize import duration
from cuisine_db.pooler.pools import PoolerUsage, pool_findings, read_pools


def _counts(title: str, counts: dict[str, int]) -> Table:
    table = Table(title, "sessions", title_justify="left")
    for key, count in list(counts.items())[:10]:
        table.add_row(escape(key), str(count))
    if len(counts) > 10:
        table.add_row(f"… {len(counts) - 10} more", str(sum(list(counts.values())[10:])))
    return table


def show_pools(pooled: PoolerUsage) -> None:
    """PgBouncer's pools: clients served and waiting, server connections, the longest wait."""
    if not pooled.reachable:
        return  # the verdict says so
    table = Table("database", "user", "mode", "clients active", "waiting", "longest wait", "servers active", "idle",
                  title=f"PgBouncer on {pooled.address} (SHOW POOLS)")
    for pool in pooled.pools:
        table.add_row(escape(pool.database), escape(pool.user), pool.pool_mode, str(pool.cl_active),
                      str(pool.cl_waiting), f"{pool.maxwait_seconds:.1f}s", str(pool.sv_active), str(pool.sv_idle))
    out.print(table)


def connections(env: EnvOption = None, json: JsonOption = False) -> None:
    """Connection slots in use by database, user, application, client and state; leaks; a verdict.

    Exit 1 when the verdict finds a problem (near the limit, sessions idle in transaction too long).
    """
    chosen = environment(env)
    usage = connection_usage(settings(), chosen)
    limits = chosen.monitoring
    findings = (slot_usage(usage, warning=limits.connections_warning, critical=limits.connections_critical)
                + idle_in_transaction(usage, seconds=limits.idle_in_transaction_seconds)
                + long_transactions(usage, seconds=limits.long_transaction_seconds))
    # Issue 9: with a pooler configured, its pools (SHOW POOLS) and whether clients queue for a server connection.
    pooled = read_pools(settings(), chosen)
    findings += pool_findings(pooled, chosen) if pooled is not None else []
    if json:
        print_json({"usage": usage, "findings": findings, "pooler": pooled})
    else:
        out.print(f"[bold]{chosen.name}[/]: {usage.in_use} of {usage.available} connection slots in use "
                  f"({usage.share:.0%}): max_connections {usage.max_connections}, {usage.reserved} reserved for "
                  "superusers (this session not counted)")
        if usage.sessions:
            out.print(Columns([_counts("state", usage.by_state), _counts("database", usage.by_database),
                               _counts("user", usage.by_user), _counts("application", usage.by_application),
                               _counts("client", usage.by_client)]))
        if usage.idle_in_transaction:
            table = Table("pid", "user@database", "application", "client", "idle for", "transaction open",
                          "last query", title="idle in transaction (possible connection leaks)")
            for s in usage.idle_in_transaction:
                table.add_row(str(s.pid), escape(f"{s.username}@{s.database}"), escape(s.application), s.client,
                              duration(s.state_seconds), duration(s.xact_seconds), escape(s.query))
            out.print(table)
        oldest = usage.oldest_transaction
        if oldest is not None:
            out.print(escape(f"oldest transaction: pid {oldest.pid} ({oldest.username}@{oldest.database}, "
                             f"{oldest.application or 'no application'}), open {duration(oldest.xact_seconds)}, "
                             f"now {oldest.state}"))
        if pooled is not None:
            show_pools(pooled)
        show_findings(findings, title="verdict", clean="connection usage is healthy")
    if findings:
        if not json:
            say(f"{len(findings)} problem(s) found")
        raise typer.Exit(1)

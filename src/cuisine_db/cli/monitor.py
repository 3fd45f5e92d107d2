"""`cuisine-db monitor`, `growth`, `metrics serve` (db-monitor, db-growth): the runbook's daily and monthly checks."""

from __future__ import annotations

import math
import signal
import sys
import threading
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cuisine_db.cli.common import EnvOption, JsonOption, environment, out, print_json, say, settings
from cuisine_db.cli.render import show_findings
from cuisine_db.errors import CuisineDbError, ServerDownError, UsageError
from cuisine_db.humanize import size
from cuisine_db.monitor import growth_report, run_monitor
from cuisine_db.monitor import nagios as plugin

metrics_app = typer.Typer(help="Prometheus metrics of an environment.", no_args_is_help=True)

_COLOURS = {"ok": "green", "warning": "yellow", "critical": "bold red"}
_BARS = " ▁▂▃▄▅▆▇█"


def _window(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 300:
        raise UsageError(f"--window takes seconds from 0 to 300, not {text!r}",
                         hint="0 skips the transaction-volume sample")
    return value


def monitor(
    env: EnvOption = None,
    json: JsonOption = False,
    nagios: Annotated[bool, typer.Option("--nagios", help="One status line and Nagios exit codes: 0 OK, "
                                                          "1 WARNING, 2 CRITICAL, 3 UNKNOWN.")] = False,
    window: Annotated[str | None, typer.Option("--window", help="Sample transaction volume over this many "
                                                                "seconds (default: since the previous run if "
                                                                "it was within 15 minutes, else 1 s).")] = None,
) -> None:
    """The daily monitoring checks. Exit 0 all ok, 1 a warning or critical finding, 3 the server is down (never
    started here: make cluster-up starts it); --nagios: see its codes (a server down is CRITICAL)."""
    if nagios:
        name = env or "default environment"
        try:
            chosen = environment(env)
            name = chosen.name
            report = run_monitor(settings(), chosen, _window(window))
        except ServerDownError as exc:
            sys.stdout.write(plugin.down_line(name, exc.message, exc.hint) + "\n")
            raise typer.Exit(plugin.CRITICAL) from None
        except CuisineDbError as exc:
            # A plugin that cannot judge says UNKNOWN, whatever else stopped it (bad input, a refused role).
            sys.stdout.write(plugin.unknown_line(name, exc.message) + "\n")
            raise typer.Exit(plugin.UNKNOWN) from None
        lines = [plugin.status_line(report)]
        lines += [f"{f.severity.upper()}: {f.check}: {f.subject}: {f.evidence}" for f in report.findings]
        sys.stdout.write("\n".join(lines) + "\n")
        raise typer.Exit(plugin.CODES[report.status])
    chosen = environment(env)
    report = run_monitor(settings(), chosen, _window(window))
    if json:
        print_json(report)
    else:
        table = Table("check", "status", "figures", title=f"monitoring {chosen.name}")
        for check in report.checks:
            colour = _COLOURS[check.status]
            table.add_row(check.name, f"[{colour}]{check.status}[/]", escape(check.summary))
        out.print(table)
        if report.findings:
            show_findings(report.findings, title="findings")
    if report.status != "ok":
        if not json:
            say(f"{chosen.name}: {report.status}: {len(report.findings)} finding(s)")
        raise typer.Exit(1)


def _spark(values: list[int]) -> str:
    low, high = min(values), max(values)
    if high == low:
        return _BARS[4] * len(values)
    return "".join(_BARS[1 + round((v - low) / (high - low) * 7)] for v in values)


def growth(
    env: EnvOption = None,
    days: Annotated[int, typer.Option("--days", min=1, max=800, help="How far back to look.")] = 30,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many tables.")] = 20,
    json: JsonOption = False,
) -> None:
    """Growth of the database and its tables over time, and days until the disk is full at the recent rate."""
    chosen = environment(env)
    report = growth_report(settings(), chosen, days, limit)
    if json:
        print_json(report)
        return
    out.print(f"[bold]{chosen.name}[/]: {report.snapshots} snapshot(s) over the last {days} day(s)")
    if report.daily:
        # A bar per day is the chart an operator reads at a glance; no plotting library needed for it.
        top = max(b for _, b in report.daily) or 1
        width = 50
        for day, total in report.daily:
            bar = "█" * max(1, round(total / top * width))
            out.print(f"  {day.isoformat()}  {bar} {size(total)}")
    if report.tables:
        table = Table("table", "then", "now", "growth", "per day", "trend", title="growth per table, largest first")
        for t in report.tables:
            name = t.name if t.schema == "public" else f"{t.schema}.{t.name}"
            table.add_row(escape(name), size(t.first_bytes), size(t.last_bytes), size(t.growth_bytes),
                          size(t.bytes_per_day), _spark(t.series[-40:]))
        out.print(table)
    f = report.forecast
    if f.days_until_full is not None:
        limits = chosen.monitoring
        colour = "red" if f.days_until_full < limits.days_until_full_critical else \
            "yellow" if f.days_until_full < limits.days_until_full_warning else "green"
        out.print(f"disk full in [{colour}]{f.days_until_full:,.1f} days[/] ({size(f.free_bytes or 0)} free, "
                  f"{f.note})")
    else:
        rate = f" ({size(f.rate_bytes_per_day)}/day)" if f.rate_bytes_per_day is not None else ""
        out.print(escape(f"days until full: unknown{rate}: {f.note}"))


@metrics_app.command("serve")
def metrics_serve(
    env: EnvOption = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")] = 9187,
    address: Annotated[str, typer.Option("--address", help="Address to listen on (loopback by default).")]
    = "127.0.0.1",
    replica: Annotated[str | None, typer.Option("--replica", help="Serve this replica's metrics instead of the "
                                                "primary's (a name db-replicas lists).")] = None,
) -> None:
    """Serve the monitoring figures as Prometheus metrics at http://ADDRESS:PORT/metrics until stopped."""
    # prometheus_client is imported only here: every other command starts faster without it.
    from cuisine_db.monitor.metrics import check_address, serve

    chosen = environment(env)
    if not check_address(address):
        say(f"[yellow]warning:[/] {address} is not loopback: anyone who reaches it can read these metrics")
    server, thread = serve(settings(), chosen, address, port, replica)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    host = f"[{address}]" if ":" in address else address
    member = f"replica {replica} of {chosen.name}" if replica else chosen.name
    say(f"serving {member}'s metrics on http://{host}:{port}/metrics (Ctrl-C to stop)")
    stop.wait()
    server.shutdown()
    thread.join(timeout=10)
    say("stopped")

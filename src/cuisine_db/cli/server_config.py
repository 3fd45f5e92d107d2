"""`cuisine-db config show|update|recommend` (db-show-config, db-update-config, db-recommend-config): the runbook's
Configuration Management."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, asker, environment, out, print_json, say, settings
from cuisine_db.errors import UsageError

# The services (and psycopg) are imported by the command that runs: `config ... --help` starts faster.

app = typer.Typer(help="Server configuration: show, update (validated ALTER SYSTEM), recommend.",
                  no_args_is_help=True)


@app.command("show")
def show(
    env: EnvOption = None,
    include_defaults: Annotated[bool, typer.Option("--all", help="Every parameter, defaults included.")] = False,
    json: JsonOption = False,
) -> None:
    """Every setting not at its default: value, default, where it was set, whether it needs a restart, pending."""
    from cuisine_db.diagnose.server_config import pretty, show_config, visible

    chosen = environment(env)
    report = show_config(settings(), chosen, include_defaults=include_defaults)
    if json:
        print_json({**{k: getattr(report, k) for k in report.__slots__}, "pending_restart": report.pending_restart})
        return
    table = Table("parameter", "value", "default", "source", "context", "restart", "pending",
                  title=f"{'all' if include_defaults else 'non-default'} settings on {chosen.name} "
                        f"(PostgreSQL {report.server_version})")
    for row in report.settings:
        where = row.source + (f" ({row.sourcefile}:{row.sourceline})" if row.sourcefile else "")
        value = visible(row.name, row.value) or ""
        table.add_row(row.name, escape(value), escape(pretty(row.default)), escape(where), row.context,
                      "needed" if row.needs_restart else "-", "[bold yellow]yes[/]" if row.pending_restart else "-")
    out.print(table)
    if report.pending_restart:
        say(f"[yellow]waiting for a restart:[/] {', '.join(report.pending_restart)} "
            f"(make db-update-config env={chosen.name} ... restart=1 on a local cluster, or restart the server)")
    for error in report.file_errors:
        say(f"[red]not applied:[/] {escape(str(error.name))} in {error.sourcefile}:{error.sourceline}: "
            f"{escape(error.error)}")
    for note in report.notes:
        say(f"note: {note}")


@app.command("update")
def update(
    param: Annotated[str, typer.Argument(help="Parameter name, e.g. max_connections.")],
    value: Annotated[str | None, typer.Argument(help="New value, e.g. 200 or 64MB.")] = None,
    env: EnvOption = None,
    reset: Annotated[bool, typer.Option("--reset", help="Remove the parameter from postgresql.auto.conf.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Restart the local cluster if the change needs it.")
                       ] = False,
    yes: YesOption = False,
    json: JsonOption = False,
    ram: Annotated[str | None, typer.Option("--ram", help="The server host's memory, e.g. 16GB, for the memory check "
                                                          "(default: this machine's for a local or loopback server)."
                                            )] = None,
) -> None:
    """Validate against pg_settings and the host's memory, ALTER SYSTEM, reload; say whether a restart is needed."""
    from cuisine_db.diagnose.server_config import update_config, visible

    if reset == (value is not None and value != ""):
        raise UsageError("give either value=... or reset=1 (back to the configuration file's value or the default)",
                         hint="e.g. make db-update-config param=max_connections value=200")
    chosen = environment(env)
    result = update_config(settings(), chosen, param, None if reset else value, restart=restart, yes=yes,
                           ask=asker(chosen), ram=ram)
    if json:
        print_json({**{k: getattr(result, k) for k in result.__slots__},
                    "old": visible(result.name, result.old), "new": visible(result.name, result.new),
                    "in_effect": visible(result.name, result.in_effect)})
        return
    old, new = visible(result.name, result.old), visible(result.name, result.new)
    say(f"{chosen.name}: {result.name}: {old} -> {new} (written to postgresql.auto.conf, configuration reloaded)")
    for note in result.notes:
        say(f"[yellow]warning:[/] {note}")
    if result.restarted:
        say(f"restarted the server: {result.name} is now {visible(result.name, result.in_effect)}")
    elif result.needs_restart:
        say(f"[bold yellow]{result.name} needs a restart to take effect[/]: until then it stays "
            f"{visible(result.name, result.in_effect)}. "
            + (f"Run: make db-update-config env={chosen.name} param={result.name} "
               f"{'reset=1' if reset else f'value={value}'} restart=1"
               if chosen.is_local else "Restart the server with your platform's tools."))
    else:
        say(f"in effect now: {result.name} = {visible(result.name, result.in_effect)}")


@app.command("recommend")
def recommend(
    env: EnvOption = None,
    ram: Annotated[str | None, typer.Option("--ram", help="The server's memory, e.g. 16GB (default for a local "
                                                          "cluster: this machine's).")] = None,
    cpus: Annotated[int | None, typer.Option("--cpus", min=1, max=1024, help="The server's CPUs.")] = None,
    disk: Annotated[str | None, typer.Option("--disk", help="ssd or hdd (default: detected for a local cluster, "
                                                            "else ssd).")] = None,
    include_kept: Annotated[bool, typer.Option("--all", help="Also list values already as recommended.")] = False,
    json: JsonOption = False,
) -> None:
    """The runbook's rules with PGTune's formulas and the live server's evidence, as db-update-config lines."""
    from cuisine_db.diagnose.config_advice import recommend_config
    from cuisine_db.diagnose.server_config import pretty

    chosen = environment(env)
    advice = recommend_config(settings(), chosen, ram=ram, cpus=cpus, disk=disk)
    if json:
        print_json({**{k: getattr(advice, k) for k in advice.__slots__}, "changes": advice.changes})
        return
    for assumption in advice.assumptions:
        say(assumption)
    rows = advice.recommendations if include_kept else advice.changes
    table = Table("parameter", "current", "recommended", "restart", "why", title=f"recommended settings for "
                  f"{chosen.name}")
    for row in rows:
        table.add_row(row.name, escape(pretty(row.current)), escape(row.recommended) if row.differs else "(keep)",
                      "needed" if row.needs_restart else "-", escape("; ".join(row.reasons)))
    out.print(table)
    if advice.changes:
        say("apply with:")
        for row in advice.changes:
            out.print(escape(row.command))
    else:
        say("every checked setting is already as recommended")

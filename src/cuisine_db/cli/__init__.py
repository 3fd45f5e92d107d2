"""The `cuisine-db` command: parse, call a service, render. No SQL here."""

from __future__ import annotations

import sys

import typer

# Typer vendors click; its usage errors are caught here so each becomes one line and exit 2.
from typer._click import exceptions as click_exceptions

from cuisine_db.cli import (
    archive,
    backups,
    clusters,
    connections,
    drill,
    environments,
    indexes,
    locks,
    maintenance,
    migrate,
    monitor,
    pooler,
    queries,
    replicas,
    restore,
    schedule,
    seed,
    server_config,
    sizes,
    wal,
)
from cuisine_db.cli import security as security_cli
from cuisine_db.cli.incidents import app as incident_app
from cuisine_db.cli.integrity import app as integrity_app
from cuisine_db.errors import EXIT_USAGE, CuisineDbError

app = typer.Typer(
    name="cuisine-db",
    help="The Cuisine Code database runbook, as commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(environments.env_app, name="env")
app.add_typer(clusters.postgres_app, name="postgres")
app.add_typer(clusters.cluster_app, name="cluster")
app.add_typer(migrate.app, name="migrate")
app.add_typer(backups.app, name="backup")
app.add_typer(restore.app, name="restore")
app.add_typer(maintenance.app, name="maintenance")
app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    environments.psql
)
app.command("seed")(seed.seed)
app.command("size")(sizes.size)
app.command("table-sizes")(sizes.sizes)
app.add_typer(security_cli.app, name="security")
app.command("connections")(connections.connections)
app.command("locks")(locks.locks)
app.command("terminate-query")(locks.terminate_query)
app.command("monitor")(monitor.monitor)
app.command("growth")(monitor.growth)
app.add_typer(monitor.metrics_app, name="metrics")
app.add_typer(archive.app, name="archive")
# Performance tuning (issue 5)
app.command("slow-queries")(queries.slow_queries)
app.command("explain")(queries.explain)
app.command("analyze")(indexes.analyze)
app.command("vacuum-analyze")(indexes.vacuum_analyze)
app.add_typer(indexes.app, name="index")
app.add_typer(server_config.app, name="config")
# Point-in-time recovery (issue 4): WAL archiving (push/fetch/check take the light path in entry.py)
app.add_typer(wal.app, name="wal")
app.add_typer(schedule.app, name="schedule")
# Read replicas and pooling (issue 9)
app.add_typer(replicas.app, name="replica")
app.add_typer(pooler.app, name="pooler")
app.add_typer(incident_app, name="incident")
app.add_typer(integrity_app, name="integrity")
app.command("dr-drill")(drill.dr_drill)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main() -> None:
    """Entry point: user errors become one line and an exit code; bugs keep their traceback."""
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="cuisine-db", standalone_mode=False)
    except CuisineDbError as exc:
        line = f"error: {_one_line(exc.message)}"
        if exc.hint:
            line += f" (hint: {_one_line(exc.hint)})"
        sys.stderr.write(line + "\n")
        sys.exit(exc.exit_code)
    except click_exceptions.NoArgsIsHelpError:
        sys.exit(EXIT_USAGE)  # the help has been shown
    except click_exceptions.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx else ""
        sys.stderr.write(f"error: {where}{_one_line(exc.format_message())}\n")
        sys.exit(EXIT_USAGE)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("aborted; nothing more was done\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)

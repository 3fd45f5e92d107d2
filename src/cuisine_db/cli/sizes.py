"""`cuisine-db size` and `cuisine-db table-sizes` (db-size, db-table-sizes)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cuisine_db.cli.common import EnvOption, JsonOption, ReplicaOption, environment, out, print_json, routed, settings
from cuisine_db.diagnose import humanize
from cuisine_db.diagnose.sizes import database_size, table_sizes

human = humanize.size


def size(env: EnvOption = None, json: JsonOption = False, replica: ReplicaOption = None) -> None:
    """The database's size on disk, and the free space of the data directory's filesystem when local."""
    chosen = environment(env)
    result = database_size(settings(), chosen, routed(chosen, replica, "db-size"))
    if json:
        fs = result.filesystem
        print_json({"database": result.database, "bytes": result.bytes,
                    "filesystem": None if fs is None else {"path": fs.path, "total_bytes": fs.total_bytes,
                                                           "free_bytes": fs.free_bytes,
                                                           "free_share": round(fs.free_share, 4)}})
        return
    out.print(f"{result.database}: {human(result.bytes)}")
    fs = result.filesystem
    if fs is None:
        out.print("free space: not measured (a remote server: its disks are not visible from here)")
    else:
        limits = chosen.monitoring
        colour = "red" if fs.free_share < limits.disk_free_critical else \
            "yellow" if fs.free_share < limits.disk_free_warning else "green"
        out.print(f"data directory {fs.path}: [{colour}]{human(fs.free_bytes)} free[/] of {human(fs.total_bytes)} "
                  f"([{colour}]{fs.free_share:.1%}[/])")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


def sizes(
    env: EnvOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many tables.")] = 50,
    json: JsonOption = False,
    replica: ReplicaOption = None,
) -> None:
    """Largest tables: heap, indexes, TOAST, total, estimated rows, dead-tuple share and estimated bloat."""
    chosen = environment(env)
    rows = table_sizes(settings(), chosen, limit, routed(chosen, replica, "db-table-sizes"))
    if json:
        print_json(rows)
        return
    table = Table("table", "rows (est.)", "heap", "indexes", "toast", "total", "dead %", "bloat (est.)", "bloat %",
                  title=f"tables on {chosen.name}, largest first")
    for row in rows:
        name = row.table_name if row.schema == "public" else f"{row.schema}.{row.table_name}"
        if row.locked:
            name += " (locked: sizes from pg_class)"
        bloat = "not analyzed" if row.bloat_bytes is None else human(row.bloat_bytes)
        table.add_row(escape(name), f"{row.row_estimate:,}", human(row.heap_bytes), human(row.index_bytes),
                      human(row.toast_bytes), human(row.total_bytes), f"{row.dead_share * 100:.1f}", bloat,
                      _share(row.bloat_share))
    out.print(table)

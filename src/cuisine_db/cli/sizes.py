"""`cuisine-db size` and `cuisine-db table-sizes` (db-size, db-table-sizes)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cuisine_db.cli.common import EnvOption, JsonOption, environment, out, print_json, settings
from cuisine_db.diagnose import database_size, table_sizes


def human(size: int) -> str:
    """Bytes in the units pg_size_pretty uses."""
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def size(env: EnvOption = None, json: JsonOption = False) -> None:
    """The database's size on disk."""
    result = database_size(settings(), environment(env))
    if json:
        print_json(result)
    else:
        out.print(f"{result.database}: {human(result.bytes)}")


def sizes(
    env: EnvOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many tables.")] = 50,
    json: JsonOption = False,
) -> None:
    """Largest tables: heap, indexes, TOAST, total, estimated rows and dead-tuple share."""
    chosen = environment(env)
    rows = table_sizes(settings(), chosen, limit)
    if json:
        print_json(rows)
        return
    table = Table("table", "rows (est.)", "heap", "indexes", "toast", "total", "dead %",
                  title=f"tables on {chosen.name}")
    for row in rows:
        name = row.table_name if row.schema == "public" else f"{row.schema}.{row.table_name}"
        table.add_row(name, f"{row.row_estimate:,}", human(row.heap_bytes), human(row.index_bytes),
                      human(row.toast_bytes), human(row.total_bytes), f"{row.dead_share * 100:.1f}")
    out.print(table)

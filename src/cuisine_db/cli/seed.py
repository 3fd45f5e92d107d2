"""`cuisine-db seed`: deterministic Cuisine Code data for demos, tests and benchmarks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer

from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, asker, environment, print_json, say, settings
from cuisine_db.errors import UsageError
from cuisine_db.humanize import size
from cuisine_db.seed import replace_rows


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise UsageError(f"--until {value!r} is not a date", hint="write it as YYYY-MM-DD") from None


def seed(
    env: EnvOption = None,
    scale: Annotated[int, typer.Option("--scale", min=1, max=10_000,
                                       help="1 = 1,000 users, 5,000 recipes, 60,000 executions (about 25 MB).")] = 1,
    random_seed: Annotated[int, typer.Option("--seed", help="Same seed, scale and --until: same rows.")] = 42,
    until: Annotated[str | None, typer.Option("--until", help="Last day of the data, YYYY-MM-DD (default: today, UTC).")
                     ] = None,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """Replace the Cuisine Code tables' contents with generated data (loaded with COPY, all or nothing)."""
    s = settings()
    chosen = environment(env)
    last_day = _day(until)
    report = replace_rows(s, chosen, scale=scale, seed=random_seed, until=last_day, yes=yes, ask=asker(chosen),
                          notify=say)
    if json:
        print_json(report)
    else:
        total = sum(report.rows.values())
        say(f"{chosen.name}: loaded {total:,} rows ({size(report.bytes)} of COPY data, "
            f"{size(report.table_bytes)} of tables) in {report.seconds:.1f}s "
            f"= {size(report.bytes / max(report.seconds, 1e-6))}/s")

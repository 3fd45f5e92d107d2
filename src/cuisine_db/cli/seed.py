"""`cuisine-db seed`: deterministic Cuisine Code data for demos, tests and benchmarks."""

from __future__ import annotations

from typing import Annotated

import typer

from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, confirm, environment, print_json, say, settings
from cuisine_db.ops.journal import journaled
from cuisine_db.seed import load


def seed(
    env: EnvOption = None,
    scale: Annotated[int, typer.Option("--scale", min=1, max=10_000, help="1 = about 1,000 users.")] = 1,
    random_seed: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 42,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """Replace the Cuisine Code tables' contents with generated data (loaded with COPY)."""
    s = settings()
    chosen = environment(env)
    with journaled(s, chosen, "seed", {"scale": scale, "seed": random_seed}) as entry:
        confirm(chosen, "Replacing every row of the Cuisine Code tables with generated data", yes)
        report = load(s, chosen, scale=scale, seed=random_seed, notify=say)
        entry.details["rows"] = report.rows
    if json:
        print_json(report)
    else:
        total = sum(report.rows.values())
        say(f"{chosen.name}: loaded {total:,} rows ({report.bytes / 1e6:.1f} MB) in {report.seconds:.1f}s "
            f"= {report.bytes / 1e6 / report.seconds:.1f} MB/s")

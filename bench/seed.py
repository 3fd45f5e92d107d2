"""Seed load rate against raw `COPY FROM STDIN` (psql's \\copy) of the same rows, in the same run.

Starts a scratch cluster with the project's own cluster code, applies the migrations, writes the generated
rows to files once (untimed), then alternates: raw psql `\\copy` of those files in one transaction, and
`cuisine-db seed` (generation included). Reports each run and the medians; MB/s counts COPY text bytes,
which are the same for both.

    .venv/bin/python bench/seed.py --scale 10 --repeat 3 [--version 14]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cuisine_db.config import load_settings
from cuisine_db.migrations import migrate
from cuisine_db.postgres import client_environ
from cuisine_db.postgres.binaries import find
from cuisine_db.postgres.runner import tool_environ
from cuisine_db.postgres.scratch import scratch_environment
from cuisine_db.seed import load
from cuisine_db.seed.generate import CuisineData

REPO = Path(__file__).resolve().parents[1]


def write_files(scale: int, seed: int, folder: Path) -> tuple[Path, int]:
    """The rows the seed would load, as COPY files, and a psql script that loads them in one transaction."""
    data = CuisineData(scale, seed)
    tables = data.tables()
    names = ", ".join(table.name for table in tables)
    lines = [f"TRUNCATE {names} RESTART IDENTITY;"]
    total = 0
    for table in tables:
        path = folder / f"{table.name}.copy"
        with path.open("wb") as handle:
            for chunk in table.chunks:
                handle.write(chunk)
                total += len(chunk)
        lines.append(f"\\copy {table.name} ({', '.join(table.columns)}) from '{path}'")
    script = folder / "load.sql"
    script.write_text("\n".join(lines) + "\n")
    return script, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--version", type=int, default=14)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    settings = load_settings({"CUISINE_DB_CONFIG": str(REPO / "cuisine-db.toml")})
    with tempfile.TemporaryDirectory(prefix="bench-seed-") as folder, \
            scratch_environment(settings, args.version, name="benchseed") as (scratch, env):
        migrate(scratch, env)
        script, copy_bytes = write_files(args.scale, args.seed, Path(folder))
        psql = find(args.version, settings.cache_dir).program("psql")
        environ = tool_environ(client_environ(scratch, env))
        raw_times: list[float] = []
        seed_times: list[float] = []
        for _ in range(args.repeat):
            started = time.monotonic()
            subprocess.run([str(psql), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
                           env=environ, check=True)
            raw_times.append(time.monotonic() - started)
            report = load(scratch, env, scale=args.scale, seed=args.seed)
            assert report.bytes == copy_bytes, "the seed and the files must hold the same rows"
            seed_times.append(report.seconds)
        raw, seeded = statistics.median(raw_times), statistics.median(seed_times)
        result = {
            "postgres": args.version, "scale": args.scale, "copy_mb": round(copy_bytes / 1e6, 1),
            "table_mb": round(report.table_bytes / 1e6, 1), "repeat": args.repeat,
            "raw_copy_s": [round(t, 2) for t in raw_times], "seed_s": [round(t, 2) for t in seed_times],
            "raw_copy_mb_s": round(copy_bytes / 1e6 / raw, 1), "seed_mb_s": round(copy_bytes / 1e6 / seeded, 1),
            "seed_rate_vs_raw": round(raw / seeded, 2),
        }
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()

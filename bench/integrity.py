"""db-verify-integrity against `pg_amcheck --heapallindexed` alone, on the same seeded database, in the same run.

Starts a scratch cluster with the project's own code, applies the migrations, seeds it (scale 28 gives about
1 GB of tables and indexes) and vacuums it (tables in service are all-visible, thanks to autovacuum). Runs each
side once untimed, so both find the data in the OS cache and amcheck installed, then alternates: pg_amcheck
--heapallindexed with its default single connection, pg_amcheck with as many connections as ours,
`cuisine-db integrity verify --json` (the command behind make db-verify-integrity, which adds the constraint,
sequence, collation and checksum checks), and the same checks called in this process (the work without the
CLI's start-up). Prints each run and the medians as JSON; the goal is verify <= 1.5x pg_amcheck.

    .venv/bin/python bench/integrity.py --scale 28 --repeat 3 --jobs 2 [--version 14]
    CUISINE_DB_CONFIG=... .venv/bin/python bench/integrity.py --env big   # an environment seeded beforehand
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.migrations import migrate
from cuisine_db.ops.integrity import verify_integrity
from cuisine_db.postgres import binaries, client_environ
from cuisine_db.postgres.runner import tool_environ
from cuisine_db.postgres.scratch import scratch_environment
from cuisine_db.seed import load

REPO = Path(__file__).resolve().parents[1]


def timed(argv: list[str], environ: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    started = time.monotonic()
    result = subprocess.run(argv, env=environ, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if result.returncode not in ok:
        raise SystemExit(f"{argv[0]} exited {result.returncode}: {result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=28)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--version", type=int, default=14)
    parser.add_argument("--env", help="Measure this environment of $CUISINE_DB_CONFIG as it is (no scratch, no seed).")
    args = parser.parse_args()

    if args.env:
        settings = load_settings()
        measure(settings, settings.env(args.env), args, seed_mb=None, config=settings.config_path)
        return
    settings = load_settings({"CUISINE_DB_CONFIG": str(REPO / "cuisine-db.toml")})
    with scratch_environment(settings, args.version, name="benchintegrity") as (scratch, env), \
            tempfile.TemporaryDirectory(prefix="bench-integrity-") as folder:
        migrate(scratch, env)
        seeded = load(scratch, env, scale=args.scale)
        # As autovacuum leaves a table in service: all-visible pages (the foreign-key checks then read indexes).
        with connect(scratch, env, "bench") as conn:
            conn.execute("VACUUM")
        # The CLI reads a config file: point one at the scratch cluster.
        config = Path(folder) / "cuisine-db.toml"
        config.write_text(f'state_dir = "{scratch.state_dir}"\n[environments.{env.name}]\nport = {env.port}\n'
                          f"postgres_version = {env.postgres_version}\n")
        measure(scratch, env, args, seed_mb=round(seeded.table_bytes / 1e6), config=config)


def measure(settings: Settings, env: Environment, args: argparse.Namespace, seed_mb: int | None,
            config: Path) -> None:
    """Warm up, then alternate the anchors and ours; print the runs and medians as JSON."""
    with connect(settings, env, "bench") as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        database_bytes = int(row[0]) if row else 0
        server_major = conn.info.server_version // 10000
    cli_environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
    verify = [str(REPO / ".venv" / "bin" / "cuisine-db"), "integrity", "verify", "--env", env.name, "--json",
              "--jobs", str(args.jobs)]
    pg_amcheck = str(binaries.client_for(server_major, settings.cache_dir).program("pg_amcheck"))
    amcheck_environ = tool_environ(client_environ(settings, env))
    anchor_1 = [pg_amcheck, "--heapallindexed", "--install-missing"]
    anchor_j = [*anchor_1, f"--jobs={args.jobs}"]
    timed(anchor_1, amcheck_environ)  # warm-up: installs amcheck, fills the OS cache
    timed(verify, cli_environ)
    runs: dict[str, list[float]] = {"pg_amcheck_j1_s": [], f"pg_amcheck_j{args.jobs}_s": [], "verify_s": [],
                                    "verify_in_process_s": []}
    for _ in range(args.repeat):
        runs["pg_amcheck_j1_s"].append(timed(anchor_1, amcheck_environ))
        runs[f"pg_amcheck_j{args.jobs}_s"].append(timed(anchor_j, amcheck_environ))
        runs["verify_s"].append(timed(verify, cli_environ))
        started = time.monotonic()
        report = verify_integrity(settings, env, jobs=args.jobs)
        runs["verify_in_process_s"].append(time.monotonic() - started)
        assert report.ok, report.findings
    medians = {name: statistics.median(values) for name, values in runs.items()}
    result = {
        "postgres": server_major, "scale": args.scale if seed_mb is not None else None, "jobs": args.jobs,
        "repeat": args.repeat,
        "database_mb": round(database_bytes / 1e6), "seed_table_mb": seed_mb,
        **{name: [round(value, 2) for value in values] for name, values in runs.items()},
        "median_s": {name: round(value, 2) for name, value in medians.items()},
        "verify_vs_pg_amcheck_j1": round(medians["verify_s"] / medians["pg_amcheck_j1_s"], 2),
        f"verify_vs_pg_amcheck_j{args.jobs}": round(medians["verify_s"] / medians[f"pg_amcheck_j{args.jobs}_s"],
                                                   2),
        f"in_process_vs_pg_amcheck_j{args.jobs}": round(
            medians["verify_in_process_s"] / medians[f"pg_amcheck_j{args.jobs}_s"], 2),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")




if __name__ == "__main__":
    main()

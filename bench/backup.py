"""Logical backup and restore against raw pg_dump / pg_restore, in the same run, on the same cluster.

Starts a scratch cluster with the project's own code, applies the migrations and seeds it (scale 30 gives
over 1 GB of table data), then alternates, `--repeat` times:
  - raw `pg_dump --format=directory --jobs=2 --compress=zstd` (a PostgreSQL 16+ pg_dump) into a local folder,
    and `cuisine-db backup create --type logical` (zstd, age encryption, sha256, manifest) into a local
    repository, through the CLI as an operator runs it;
  - raw `pg_restore --jobs=2` of that folder into a new database, and `cuisine-db restore database` of the
    backup (fresh database fed from the repository, row counts checked, ANALYZE, swap).
Autovacuum is off in the scratch cluster while timing, so that no run pays for vacuuming the one before it.
Prints every run, the medians and the ratios as JSON.

    .venv/bin/python bench/backup.py --scale 30 --repeat 3 [--version 18]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrage
from psycopg import sql

from cuisine_db.backup.wal.enable import precompile
from cuisine_db.cluster import connect
from cuisine_db.config import load_settings
from cuisine_db.migrations import migrate
from cuisine_db.postgres import client_environ, connection_params
from cuisine_db.postgres.binaries import find
from cuisine_db.postgres.runner import tool_environ
from cuisine_db.postgres.scratch import scratch_environment
from cuisine_db.seed import load

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cuisine_db"]


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(argv: list[str], environ: dict[str, str]) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(argv, env=environ, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... failed: {result.stderr[-2000:]}")
    return elapsed, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--version", type=int, default=18, help="server major (raw tools need 16+ for zstd)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--level", type=int, default=None, help="zstd level for cuisine-db (default: its own)")
    args = parser.parse_args()

    # Byte-code written once, as an installed package has it: under PYTHONDONTWRITEBYTECODE (set on these
    # machines) a module edited since its .pyc was written is compiled again by every command (~50 ms when
    # none of the package's byte-code is there).
    precompile()
    settings = load_settings({"CUISINE_DB_CONFIG": str(REPO / "cuisine-db.toml")})
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as scratch_folder, \
            scratch_environment(settings, args.version, name="benchbackup") as (scratch, env):
        work = Path(scratch_folder)
        migrate(scratch, env)
        seeded = load(scratch, env, scale=args.scale)
        with connect(scratch, env, "bench") as conn:
            # No autovacuum in the timed runs: otherwise each restore competes with autovacuum's first VACUUM
            # of the database the run before it just loaded (1.1 GB), whichever tool that was. (db-restore keeps
            # autovacuum off its own tables while they load either way.)
            conn.execute("ALTER SYSTEM SET autovacuum = off")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
        params = connection_params(scratch, env)
        identity = pyrage.x25519.Identity.generate()
        key = work / "backup.key"
        key.write_text(f"{identity}\n")
        key.chmod(0o600)
        backup_settings = (f'repository = "{(work / "repository").as_uri()}"\nrecipients = ["{identity.to_public()}"]\n'
                           f'identity_file = "{key}"\njobs = {args.jobs}\n'
                           + (f"compress_level = {args.level}\n" if args.level else ""))
        config = work / "cuisine-db.toml"
        config.write_text("".join(
            f'[environments.{name}]\ndsn = "host={params["host"]} port={params["port"]} user={params["user"]} '
            f'dbname={database}"\npassfile = "{params["passfile"]}"\n[environments.{name}.backup]\n{backup_settings}'
            for name, database in (("source", env.database), ("target", "bench_target"))))
        ours_environ = {**tool_environ(), "CUISINE_DB_CONFIG": str(config)}
        client = find(args.version, settings.cache_dir)
        raw_environ = tool_environ(client_environ(scratch, env))
        runs: dict[str, list[float]] = {"raw_dump": [], "backup": [], "raw_restore": [], "restore": [],
                                        "restore_no_analyze": []}
        sizes: dict[str, int] = {}
        for attempt in range(args.repeat):
            dump = work / f"raw-{attempt}"
            seconds, _ = timed([str(client.program("pg_dump")), "--format=directory", f"--jobs={args.jobs}",
                                "--compress=zstd", f"--file={dump}", env.database], raw_environ)
            runs["raw_dump"].append(seconds)
            sizes["raw_dump"] = folder_size(dump)
            seconds, output = timed([*CLI, "backup", "create", "--env", "source", "--type", "logical", "--json"],
                                    ours_environ)
            runs["backup"].append(seconds)
            report = json.loads(output)
            sizes["backup"] = report["size"]

            with connect(scratch, env, "bench", dbname="postgres") as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"raw_{attempt}")))
            seconds, _ = timed([str(client.program("pg_restore")), f"--jobs={args.jobs}", "--exit-on-error",
                                f"--dbname=raw_{attempt}", str(dump)], raw_environ)
            runs["raw_restore"].append(seconds)
            seconds, output = timed([*CLI, "restore", "database", "--env", "target", "--backup", report["name"],
                                     "--json"], ours_environ)
            runs["restore"].append(seconds)
            kept = json.loads(output)["kept"]
            seconds, output = timed([*CLI, "restore", "database", "--env", "target", "--backup", report["name"],
                                     "--no-analyze", "--json"], ours_environ)
            runs["restore_no_analyze"].append(seconds)
            with connect(scratch, env, "bench", dbname="postgres") as conn:
                for database in (f"raw_{attempt}", kept, json.loads(output)["kept"]):
                    if database:
                        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(database)))
            shutil.rmtree(dump)
            shutil.rmtree(work / "repository" / "backups" / report["name"])
        medians = {name: statistics.median(values) for name, values in runs.items()}
        result = {
            "postgres": args.version, "scale": args.scale, "jobs": args.jobs, "repeat": args.repeat,
            "zstd_level": args.level or "default",
            "table_mb": round(seeded.table_bytes / 1e6, 1), "copy_mb": round(seeded.bytes / 1e6, 1),
            "raw_dump_mb": round(sizes["raw_dump"] / 1e6, 1), "backup_mb": round(sizes["backup"] / 1e6, 1),
            "runs_s": {name: [round(v, 2) for v in values] for name, values in runs.items()},
            "median_s": {name: round(v, 2) for name, v in medians.items()},
            "backup_vs_raw_dump": round(medians["backup"] / medians["raw_dump"], 3),
            "restore_vs_raw_restore": round(medians["restore"] / medians["raw_restore"], 3),
            "restore_no_analyze_vs_raw_restore": round(medians["restore_no_analyze"] / medians["raw_restore"], 3),
        }
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()

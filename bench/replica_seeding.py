"""Replicas seeded from the repository, and full backups from a replica, against copying the primary (issue 9).

Starts a local environment with the project's own code (fsync on, the project's defaults), applies the
migrations, seeds it, turns WAL archiving on and takes one full backup; then `--repeat` times:
  - raw `pg_basebackup -X stream -c fast` from the primary into a folder (the anchor: the copy a seeded replica
    does not ask of the primary);
  - `replica create` copying the primary (pg_basebackup -R), and `replica create --from backup` (the backup laid
    down from the repository, the archive replayed, then streaming), each until the primary shows it streaming;
  - a full backup from the primary and one from the seeded replica (`backup create --type full --replica`);
and counts the base backups the primary served meanwhile (BASE_BACKUP in its log, `log_replication_commands`).
Prints every run, the medians and the ratios as JSON.

    .venv/bin/python bench/replica_seeding.py --scale 2 --repeat 3 [--version 14]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyrage

from cuisine_db.backup import physical
from cuisine_db.backup.wal import enable
from cuisine_db.cluster import connect
from cuisine_db.config import load_settings
from cuisine_db.migrations import migrate
from cuisine_db.postgres import cluster_for
from cuisine_db.postgres.local import ensure_up
from cuisine_db.postgres.ports import free_port
from cuisine_db.postgres.runner import run
from cuisine_db.replicas import create, drop
from cuisine_db.replicas.members import find
from cuisine_db.seed import load

REPO = Path(__file__).resolve().parents[1]


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def served(datadir: Path) -> int:
    return sum(p.read_text(errors="replace").count("command: BASE_BACKUP") for p in (datadir / "log").glob("*")
               if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--version", type=int, default=14)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-seeding-") as folder:
        work = Path(folder)
        identity = pyrage.x25519.Identity.generate()
        key = work / "backup.key"
        key.write_text(f"{identity}\n")
        key.chmod(0o600)
        shutil.copytree(REPO / "db" / "migrations", work / "db" / "migrations")
        config = work / "cuisine-db.toml"
        config.write_text(
            f'default_env = "bench"\n[environments.bench]\nport = {free_port()}\npostgres_version = {args.version}\n'
            '[environments.bench.server_settings]\nlog_replication_commands = "on"\n'
            f'[environments.bench.backup]\nrepository = "{(work / "repository").as_uri()}"\n'
            f'recipients = ["{identity.to_public()}"]\nidentity_file = "{key}"\n')
        settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
        env = settings.env("bench")
        primary = ensure_up(settings, env)
        try:
            migrate(settings, env)
            seeded = load(settings, env, scale=args.scale)
            enable.enable(settings, env, restart=True)
            physical.create(settings, env, "full")
            with connect(settings, env, "bench") as conn:
                conn.execute("CHECKPOINT")
                cluster_bytes = conn.execute("SELECT sum(pg_database_size(oid)) FROM pg_database").fetchone()
            runs: dict[str, list[float]] = {"pg_basebackup": [], "replica_copied": [], "replica_seeded": [],
                                            "full_backup_primary": [], "full_backup_replica": []}
            served_by_primary: dict[str, int] = {}
            for attempt in range(args.repeat):
                target = work / f"raw-{attempt}"
                environ = {"PGHOST": "127.0.0.1", "PGPORT": str(primary.port), "PGUSER": "cuisine",
                           "PGPASSFILE": str(settings.env_dir(env) / "pgpass")}
                started = time.monotonic()
                run([primary.build.program("pg_basebackup"), "--pgdata", target, "--wal-method=stream",
                     "--checkpoint=fast", "--no-password"], env=environ, timeout=3600)
                runs["pg_basebackup"].append(time.monotonic() - started)
                shutil.rmtree(target)
                # Some writes since the backup, archived: the seeded replica replays them from the archive.
                with connect(settings, env, "bench") as conn:
                    conn.execute("CREATE TABLE IF NOT EXISTS bench_since (id bigint, body text)")
                    conn.execute("INSERT INTO bench_since SELECT g, repeat('x', 200) FROM generate_series(1, 50000) g")
                    conn.execute("SELECT pg_switch_wal()")
                for label, backup in (("replica_copied", None), ("replica_seeded", "latest")):
                    before = served(primary.datadir)
                    started = time.monotonic()
                    create.create(settings, env, "bench1", backup=backup)
                    runs[label].append(time.monotonic() - started)
                    served_by_primary[label] = served_by_primary.get(label, 0) + served(primary.datadir) - before
                    if label == "replica_copied":
                        drop.drop(settings, env, "bench1", yes=True)  # the bench is its own operator
                source = find(settings, env, "bench1").target
                for label, where in (("full_backup_primary", None), ("full_backup_replica", source)):
                    before = served(primary.datadir)
                    started = time.monotonic()
                    physical.create(settings, env, "full", source=where)
                    runs[label].append(time.monotonic() - started)
                    served_by_primary[label] = served_by_primary.get(label, 0) + served(primary.datadir) - before
                drop.drop(settings, env, "bench1", yes=True)
        finally:
            cluster_for(settings, env).destroy()
        medians = {k: median(v) for k, v in runs.items()}
        print(json.dumps({
            "machine": "shared 2-core machine; other developers' tests ran at the same time",
            "version": args.version, "scale": args.scale, "seed_rows": seeded.rows,
            "cluster_bytes": int(cluster_bytes[0]) if cluster_bytes else None,
            "runs_seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
            "medians_seconds": medians,
            "base_backups_served_by_the_primary": served_by_primary,
            "ratios": {
                "replica_seeded / replica_copied": round(medians["replica_seeded"] / medians["replica_copied"], 2),
                "replica_seeded / pg_basebackup": round(medians["replica_seeded"] / medians["pg_basebackup"], 2),
                "full_backup_replica / full_backup_primary": round(
                    medians["full_backup_replica"] / medians["full_backup_primary"], 2),
            },
        }, indent=2))


if __name__ == "__main__":
    main()

"""db-upgrade's write downtime against raw `pg_upgrade --link` + start, and the rehearsal's prediction (issue 18).

Builds one local environment of the old major with the project's own code, applies the migrations, seeds it at
`--scale` (the acceptance asks for 10 or more), takes and verifies a full backup, stops it and keeps its folder as
the pristine copy. Then `--repeat` times, alternating which goes first:
  - the tool: the pristine folder put back, `upgrade(method=link)` as db-upgrade runs it (unprotected, so no
    rehearsal); its write downtime is the report's: from the old server's stop to maintenance mode off on the new
    one (extension updates and REINDEX included; statistics and the new full backup come after, with writes on);
  - raw: the pristine data directory copied aside, the old server started on it, a new cluster initialised (not
    timed, as pg_upgrade's own procedure does it beforehand); timed: `pg_ctl stop`, `pg_upgrade --link`,
    `pg_ctl start` until it accepts connections;
and once, the rehearsal (`rehearse`) on the same pristine environment, whose predicted downtime is set against the
tool's median. Prints each run, the medians, the ratio, the load average before and after, as JSON.

`--method logical` measures the logical method's cutover instead: `--repeat` times on the pristine folder, pgbench
writes through an application role (one INSERT per transaction, a new connection for each, so that a client blocked
by maintenance mode comes back as soon as writes are allowed; pgbench is started again whenever all its clients
gave up) while `upgrade(method=logical)` copies, catches up and cuts over. The write-unavailable window is the
longest gap between two consecutive commits in the written table (the server's clock_timestamp() of each row; both
clusters run on this machine's clock), next to the downtime the report gives (maintenance mode on to off) and its
steps (`downtime_phases_seconds`; the steps with writes on, closing in before and the comparison after, apart); each
run is also printed on stderr as one line as it ends, after the cutover's own progress; the rehearsal's prediction
(`rehearse`, method=logical) is set against the reported median.

    .venv/bin/python bench/upgrade.py --scale 10 --repeat 3 [--source 14 --target 18] [--method link|logical]

Figures belong in docs/benchmarks.md, measured on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pyrage

from cuisine_db.backup import physical
from cuisine_db.backup.backup_verify import verify
from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.migrations import migrate
from cuisine_db.postgres import binaries, cluster_for
from cuisine_db.postgres.cluster import SUPERUSER
from cuisine_db.postgres.local import ensure_up, os_user_of
from cuisine_db.postgres.ports import free_port
from cuisine_db.postgres.runner import run
from cuisine_db.seed import load
from cuisine_db.upgrade import inplace, preflight, rehearsal
from cuisine_db.upgrade.request import validate

REPO = Path(__file__).resolve().parents[1]


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def copy_tree(source: Path, target: Path) -> None:
    """cp -a: owners, modes and hard-link-free copies, as the pristine folder was."""
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)


def accepts(port: int, passfile: Path, deadline: float = 120) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", passfile=str(passfile),
                                 connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source", type=int, default=14)
    parser.add_argument("--target", type=int, default=18)
    parser.add_argument("--method", choices=("link", "logical"), default="link")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as folder:
        work = Path(folder)
        work.chmod(0o755)
        identity = pyrage.x25519.Identity.generate()
        key = work / "backup.key"
        key.write_text(f"{identity}\n")
        key.chmod(0o600)
        shutil.copytree(REPO / "db" / "migrations", work / "db" / "migrations")
        config = work / "cuisine-db.toml"
        port = free_port()
        config.write_text(
            f'default_env = "bench"\n[environments.bench]\nport = {port}\npostgres_version = {args.source}\n'
            f'[environments.bench.backup]\nrepository = "{(work / "repository").as_uri()}"\n'
            f'recipients = ["{identity.to_public()}"]\nidentity_file = "{key}"\n')
        settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
        env = settings.env("bench")
        home = settings.env_dir(env)
        pristine = work / "pristine"
        loads = {"before": os.getloadavg()}
        ensure_up(settings, env)
        try:
            migrate(settings, env)
            seeded = load(settings, env, scale=args.scale)
            if args.method == "logical":
                writes_table(settings, env)
            taken = physical.create(settings, env, "full")
            assert verify(settings, env, taken.name).ok
            cluster_for(settings, env).stop()
            copy_tree(home, pristine)
            # The repository goes back with the folder: each run's new backups would otherwise stand above the
            # pristine folder's high-water mark (backup/watermark.py).
            repository = work / "repository"
            copy_tree(repository, work / "repository-pristine")
            owner = os_user_of(settings, env)
            old_build = binaries.find(args.source, settings.cache_dir)
            new_build = binaries.find(args.target, settings.cache_dir)
            if args.method == "logical":
                measured = logical_bench(config, home, pristine, work, args.repeat, args.source, args.target,
                                         new_build)
                measured.update(source=args.source, target=args.target, scale=args.scale, seed_rows=seeded.rows,
                                data_bytes=preflight.data_size(pristine / "data"))
                loads["after"] = os.getloadavg()
                measured["load_average"] = loads
                print(json.dumps(measured, indent=2, default=str))
                return
            request = validate(env, args.target, "link")
            runs: dict[str, list[float]] = {"tool_link": [], "raw_pg_upgrade_link": []}
            tool_totals: list[float] = []
            for attempt in range(args.repeat):
                order = ("tool", "raw") if attempt % 2 == 0 else ("raw", "tool")
                for which in order:
                    if which == "tool":
                        copy_tree(pristine, home)
                        copy_tree(work / "repository-pristine", repository)
                        fresh = load_settings({"CUISINE_DB_CONFIG": str(config)})
                        chosen = fresh.env("bench")
                        ensure_up(fresh, chosen)
                        started = time.monotonic()
                        report = inplace.upgrade(fresh, chosen, args.target, "link", confirm=lambda _: None)
                        tool_totals.append(time.monotonic() - started)
                        assert report.downtime_seconds is not None
                        runs["tool_link"].append(report.downtime_seconds)
                        cluster_for(load_settings({"CUISINE_DB_CONFIG": str(config)}), chosen).stop()
                        shutil.rmtree(home)
                    else:
                        runs["raw_pg_upgrade_link"].append(raw_link(settings, env, pristine, work, owner, old_build,
                                                                    new_build))
            copy_tree(pristine, home)
            copy_tree(work / "repository-pristine", repository)
            fresh = load_settings({"CUISINE_DB_CONFIG": str(config)})
            ensure_up(fresh, fresh.env("bench"))
            rehearsed = rehearsal.rehearse(fresh, fresh.env("bench"), request)
        finally:
            settle = load_settings({"CUISINE_DB_CONFIG": str(config)})
            cluster_for(settle, settle.env("bench")).destroy()
        loads["after"] = os.getloadavg()
        medians = {k: median(v) for k, v in runs.items()}
        print(json.dumps({
            "machine": "record where this ran and what else ran (a quiet machine for published figures)",
            "source": args.source, "target": args.target, "scale": args.scale, "seed_rows": seeded.rows,
            "data_bytes": preflight.data_size(pristine / "data"),
            "load_average": loads,
            "runs_seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
            "medians_seconds": medians,
            "tool_whole_run_seconds": [round(x, 3) for x in tool_totals],
            "ratio tool_link / raw": round(medians["tool_link"] / medians["raw_pg_upgrade_link"], 2),
            "rehearsal": {"predicted_downtime_seconds": rehearsed.predicted_downtime_seconds,
                          "real_median_seconds": medians["tool_link"],
                          "error": round(abs(rehearsed.predicted_downtime_seconds - medians["tool_link"])
                                         / medians["tool_link"], 3),
                          "go": rehearsed.go},
        }, indent=2, default=str))


WRITER = "bench_writer"
WRITER_PASSWORD = secrets.token_urlsafe(18)  # a throwaway role of a throwaway cluster
SCRIPT = "INSERT INTO bench_writes (client) VALUES (:client_id);\n"


def writes_table(settings: Settings, env: Environment) -> None:
    """The table pgbench writes into, the application role it writes as (maintenance mode blocks that role), and
    wal_level=logical from the pristine folder's next start on: the restart the logical method needs otherwise is
    not the cutover's and would be the longest gap."""
    from cuisine_db.cluster import connect

    with connect(settings, env, "bench upgrade") as conn:
        conn.execute("ALTER SYSTEM SET wal_level = logical")
        conn.execute("CREATE TABLE bench_writes (id bigserial PRIMARY KEY, client int NOT NULL, "
                     "at timestamptz NOT NULL DEFAULT clock_timestamp())")
        conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            psycopg.sql.Identifier(WRITER), psycopg.sql.Literal(WRITER_PASSWORD)))
        conn.execute(psycopg.sql.SQL("GRANT INSERT, SELECT ON bench_writes TO {}").format(
            psycopg.sql.Identifier(WRITER)))
        conn.execute(psycopg.sql.SQL("GRANT USAGE ON SEQUENCE bench_writes_id_seq TO {}").format(
            psycopg.sql.Identifier(WRITER)))


class PgbenchWriter(threading.Thread):
    """pgbench, started again whenever it ends (its clients give up on a refused or ended connection), until
    stopped."""

    def __init__(self, build: binaries.PgBuild, port: int, database: str, script: Path) -> None:
        super().__init__(daemon=True)
        self.argv = [str(build.program("pgbench")), "-n", "-C", "-c", "2", "-T", "2", "-f", str(script),
                     "-h", "127.0.0.1", "-p", str(port), "-U", WRITER, database]
        self.stopping = threading.Event()
        self.started_runs = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            self.started_runs += 1
            subprocess.run(self.argv, env={**os.environ, "PGPASSWORD": WRITER_PASSWORD}, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.01)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def longest_gap(settings: Settings, env: Environment) -> tuple[float, int]:
    """(the longest time between two consecutive commits into bench_writes, in seconds; the rows written)."""
    from cuisine_db.cluster import connect

    with connect(settings, env, "bench upgrade") as conn:
        row = conn.execute("SELECT coalesce(max(gap), 0), count(*) FROM (SELECT extract(epoch FROM at - lag(at) "
                           "OVER (ORDER BY at)) AS gap FROM bench_writes) AS gaps").fetchone()
    assert row is not None
    return float(row[0]), int(row[1])


def logical_bench(config: Path, home: Path, pristine: Path, work: Path, repeat: int, source: int, target: int,
                  new_build: binaries.PgBuild) -> dict[str, object]:
    """method=logical under pgbench writes, `repeat` times on the pristine folder, then its rehearsal."""
    from cuisine_db.upgrade import logical_cutover

    script = work / "writes.sql"
    script.write_text(SCRIPT)
    script.chmod(0o644)
    reported: list[float] = []
    gaps: list[float] = []
    runs = []
    for attempt in range(repeat):
        copy_tree(pristine, home)
        copy_tree(work / "repository-pristine", work / "repository")
        fresh = load_settings({"CUISINE_DB_CONFIG": str(config)})
        chosen = fresh.env("bench")
        ensure_up(fresh, chosen)
        writer = PgbenchWriter(new_build, chosen.port or 0, chosen.database, script)
        writer.start()
        time.sleep(2)
        try:
            report = logical_cutover.upgrade(fresh, chosen, target, identity_full=True, confirm=lambda _: None,
                                             notify=lambda message: print(message, file=sys.stderr, flush=True))
            time.sleep(2)  # writes on the new cluster after the cutover
        finally:
            writer.stop()
        after = load_settings({"CUISINE_DB_CONFIG": str(config)})
        upgraded = after.env("bench")
        gap, rows = longest_gap(after, upgraded)
        reported.append(report.downtime_seconds)
        gaps.append(gap)
        phases = {phase.name: phase.seconds for phase in report.phases if phase.writes_blocked}
        runs.append({"reported_downtime_seconds": report.downtime_seconds, "write_gap_seconds": round(gap, 3),
                     "rows_written": rows, "pgbench_starts": writer.started_runs,
                     "downtime_phases_seconds": phases,
                     "phases_with_writes_on_seconds": {phase.name: phase.seconds for phase in report.phases
                                                       if not phase.writes_blocked}})
        print(f"run {attempt + 1}/{repeat}: write gap {gap:.2f}s, reported downtime {report.downtime_seconds:.2f}s = "
              + " + ".join(f"{name} {seconds:.2f}" for name, seconds in phases.items()), file=sys.stderr, flush=True)
        logical_cutover.finish(after, upgraded)
        cluster_for(after, upgraded).stop()
        shutil.rmtree(home)
    copy_tree(pristine, home)
    copy_tree(work / "repository-pristine", work / "repository")
    fresh = load_settings({"CUISINE_DB_CONFIG": str(config)})
    chosen = fresh.env("bench")
    ensure_up(fresh, chosen)
    from cuisine_db.upgrade.request import UpgradeRequest

    rehearsed = rehearsal.rehearse(fresh, chosen, UpgradeRequest(chosen.name, source, target, "logical"),
                                   identity_full=True)
    real = median(reported)
    return {
        "machine": "record where this ran and what else ran (a quiet machine for published figures)",
        "method": "logical", "runs": runs,
        "medians_seconds": {"reported_downtime": real, "write_gap": median(gaps)},
        "goal": "write gap <= 5 s under pgbench",
        "rehearsal": {"predicted_downtime_seconds": rehearsed.predicted_downtime_seconds,
                      "real_median_seconds": real,
                      "error": round(abs(rehearsed.predicted_downtime_seconds - real) / real, 3) if real else None,
                      "go": rehearsed.go},
    }


def raw_link(settings: object, env: object, pristine: Path, work: Path, owner: str | None,
             old_build: binaries.PgBuild, new_build: binaries.PgBuild) -> float:
    """pg_upgrade --link by hand on a copy of the pristine data directory: stop + pg_upgrade + start, timed."""
    assert isinstance(settings, Settings) and isinstance(env, Environment)
    place = work / "raw"
    shutil.rmtree(place, ignore_errors=True)
    place.mkdir()
    place.chmod(0o755)
    copy_tree(pristine, place / "old")
    old = preflight.new_cluster(settings, inplace.at_major(env, old_build.major), place / "old", old_build,
                                env.port or 0)  # its postgresql.conf says the environment's port
    new = preflight.new_cluster(settings, inplace.at_major(env, new_build.major), place / "new", new_build,
                                free_port())
    new.init()
    preflight.trust_own_socket(new, owner)
    old.start()
    passfile = place / "pgpass.raw"
    old_port, new_port = free_port(), free_port()
    preflight.upgrade_passfile(passfile, owner, {old_port: preflight.superuser_password(old.passfile),
                                                 new_port: preflight.superuser_password(new.passfile)})
    (place / "run").mkdir()
    if owner:
        shutil.chown(place / "run", owner, owner)
    with preflight.socket_dir(owner) as sockets:
        argv = preflight.pg_upgrade_argv(old_build, new_build, old.datadir, new.datadir, old_port, new_port, "link",
                                         check=False, sockets=sockets)
        started = time.monotonic()
        old.stop()
        run(argv, user=owner, cwd=place / "run", env={"PGPASSFILE": str(passfile)}, timeout=3600)
        new.start()
        accepts(new.port, old.passfile)
        elapsed = time.monotonic() - started
    new.destroy()
    shutil.rmtree(place, ignore_errors=True)
    return elapsed


if __name__ == "__main__":
    main()

"""Physical backup, restore and WAL archiving against pgBackRest, in the same run, on the same cluster.

Builds once (reused by every run, and by later invocations with `--workdir ... --keep`): a local PostgreSQL 15
cluster started with the project's own code (fsync off, like every scratch cluster here), migrated and seeded
(`--scale 40`: over 1.5 GB of tables), a `pgbench` database, WAL archiving turned on with `cuisine-db wal enable`,
and a pgBackRest stanza in a local repository (`compress-type=zst`, `process-max=2`, `start-fast=y`,
`archive-copy=y`). Then, `--repeat` times, each pair alternating which tool goes first:

  backup   `cuisine-db backup create --type full` (what `make db-backup type=full` runs: pg_basebackup with
           server-side zstd, age encryption, sha256, manifest) against `pgbackrest backup --type=full`; each with
           its own archive_command in place (ours, or `pgbackrest archive-push`), as each would be deployed.
  restore  `cuisine-db restore database --backup NAME` (what `make db-restore` runs: stop the environment's
           server, move its data directory aside, lay the backup down, replay its own WAL, promote, start,
           delete the old directory) against `pgbackrest restore --type=immediate --target-action=promote` into
           an empty directory plus `pg_ctl start` and waiting until the server has left recovery.
  lag      `pgbench` writing for `--seconds` with `archive_command = cuisine-db wal push`: pg_stat_archiver and
           archive_status sampled every 0.25 s; the most segments the archiver was behind.
  push     `cuisine-db wal push` per 16 MB segment, as the archiver runs it (server's OS user, data directory as
           working directory, relative %p, interpreter start-up included), on real segments the lag phase just
           archived (fetched back from the archive), into an empty second repository; `pgbackrest archive-push`
           of the same files alternating with it.

Prints every run (with the load average), the medians and the ratios as JSON.

    .venv/bin/python bench/physical.py --scale 40 --repeat 3 [--workdir /work/tmp/physbench --keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyrage

from cuisine_db.backup.wal import access as wal_access
from cuisine_db.backup.wal import archive as wal_archive
from cuisine_db.backup.wal import enable as wal_enable
from cuisine_db.backup.wal import fetch as wal_fetch
from cuisine_db.backup.wal import wal_names
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.migrations import migrate
from cuisine_db.postgres import client_environ
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.runner import tool_environ
from cuisine_db.postgres.server_settings import alter_system
from cuisine_db.seed import load
from cuisine_db.storage import open_repository

REPO = Path(__file__).resolve().parents[1]
MAJOR = 15  # Debian's build, which pgBackRest 2.45 supports; server-side zstd from 15 on
BUILT = "built.json"


def stamp(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)


def row_of(conn: psycopg.Connection[Any], text: str) -> tuple[Any, ...]:
    row = conn.execute(text).fetchone()
    if row is None:
        raise SystemExit(f"no row from {text}")
    return tuple(row)


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class Bench:
    work: Path
    scale: int
    port: int  # the environment's; +1: the second archive's (never started); +2: pgBackRest's restored server
    settings: Settings = field(init=False)
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.ports = (self.port, self.port + 1, self.port + 2)
        self.config = self.work / "cuisine-db.toml"
        self.key = self.work / "backup.key"
        self.socket_dir = Path(f"/tmp/cdb-physbench-{self.ports[0]}")  # short: a socket path has 107 bytes at most
        self.pgbr = self.work / "pgbackrest"
        self.pgbr_conf = self.pgbr / "pgbackrest.conf"

    # --- set-up ------------------------------------------------------------------------------------------
    def write_config(self) -> None:
        identity = pyrage.x25519.Identity.generate()
        self.key.write_text(f"{identity}\n")
        self.key.chmod(0o600)
        recipient = identity.to_public()
        sections = [f'default_env = "bench"\nmigrations_dir = "{REPO / "db" / "migrations"}"\n'
                    f'schema_file = "{self.work / "schema.sql"}"\n']
        for name, port, repository in (("bench", self.ports[0], self.work / "repository"),
                                       ("walbench", self.ports[1], self.work / "walbench-repository")):
            sections.append(
                f"[environments.{name}]\nport = {port}\npostgres_version = {MAJOR}\n"
                f"[environments.{name}.server_settings]\nfsync = false\nsynchronous_commit = false\n"
                f'unix_socket_directories = "{self.socket_dir}"\nmax_wal_size = "4GB"\n'
                f"[environments.{name}.backup]\nrepository = \"{repository.as_uri()}\"\n"
                f'recipients = ["{recipient}"]\nidentity_file = "{self.key}"\njobs = 2\n')
        self.config.write_text("\n".join(sections))

    def load(self) -> None:
        self.settings = load_settings({"CUISINE_DB_CONFIG": str(self.config)})
        self.env = self.settings.env("bench")
        self.cluster = cluster_for(self.settings, self.env)
        self.os_user = self.cluster.os_user
        self.environ = {**tool_environ(), "CUISINE_DB_CONFIG": str(self.config)}
        self.bindir = self.cluster.build.bindir

    def as_server_user(self) -> dict[str, Any]:
        if self.os_user is None:
            return {}
        entry = pwd.getpwnam(self.os_user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def own(self, path: Path, mode: int = 0o700) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.os_user:
            shutil.chown(path, self.os_user, pwd.getpwnam(self.os_user).pw_gid)
        path.chmod(mode)

    def build(self) -> dict[str, Any]:
        if (self.work / BUILT).exists():
            self.load()
            self.own(self.socket_dir)
            ensure_up(self.settings, self.env)
            stamp(f"reusing the cluster built in {self.work}")
            return dict(json.loads((self.work / BUILT).read_text()))
        self.work.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.load()
        self.own(self.socket_dir)
        stamp(f"cluster on port {self.ports[0]} in {self.cluster.datadir}; seeding scale {self.scale}")
        ensure_up(self.settings, self.env)
        migrate(self.settings, self.env)
        seeded = load(self.settings, self.env, scale=self.scale)
        stamp(f"seeded {seeded.table_bytes / 1e6:.0f} MB of tables in {seeded.seconds:.0f}s; pgbench -i")
        with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
            conn.execute("CREATE DATABASE pgbench")
        self.pgbench("-i", "-q", "-s", "10")
        self.cli("wal", "enable", "--env", "bench", "--restart", "--yes")
        self.setup_pgbackrest()
        with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT sum(pg_database_size(oid)) FROM pg_database").fetchone()
        facts = {"scale": self.scale, "table_mb": round(seeded.table_bytes / 1e6, 1),
                 "copy_mb": round(seeded.bytes / 1e6, 1), "seed_s": round(seeded.seconds, 1),
                 "cluster_mb": round(int(row[0] if row else 0) / 1e6, 1)}
        (self.work / BUILT).write_text(json.dumps(facts))
        return facts

    def setup_pgbackrest(self) -> None:
        for folder in ("repo", "log", "lock", "spool"):
            self.own(self.pgbr / folder)
        self.own(self.pgbr, 0o711)
        passfile = self.pgbr / "pgpass"
        shutil.copy(self.cluster.passfile, passfile)
        passfile.chmod(0o600)
        self.pgbr_conf.write_text(
            f"[global]\nrepo1-path={self.pgbr / 'repo'}\nrepo1-retention-full=100\ncompress-type=zst\n"
            f"process-max=2\nstart-fast=y\narchive-copy=y\nlog-level-console=warn\nlog-level-file=info\n"
            f"log-path={self.pgbr / 'log'}\nlock-path={self.pgbr / 'lock'}\nspool-path={self.pgbr / 'spool'}\n"
            f"\n[bench]\npg1-path={self.cluster.datadir}\npg1-port={self.ports[0]}\npg1-socket-path={self.socket_dir}\n"
            f"pg1-user=cuisine\n")
        if self.os_user:
            shutil.chown(passfile, self.os_user)
        self.pgbackrest("stanza-create")

    # --- tools ---------------------------------------------------------------------------------------------
    def cli(self, *args: str) -> tuple[float, str]:
        argv = [*wal_enable.program(), *args]
        started = time.monotonic()
        result = subprocess.run(argv, env=self.environ, cwd=self.work, capture_output=True, text=True,
                                check=False, stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(f"cuisine-db {' '.join(args)} exited {result.returncode}: {result.stderr[-3000:]}")
        return elapsed, result.stdout

    def pgbackrest(self, *args: str) -> tuple[float, str]:
        argv = ["pgbackrest", f"--config={self.pgbr_conf}", "--stanza=bench", *args]
        environ = {**tool_environ(), "PGPASSFILE": str(self.pgbr / "pgpass")}
        started = time.monotonic()
        result = subprocess.run(argv, env=environ, capture_output=True, text=True, check=False, cwd="/",
                                **self.as_server_user())
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(f"pgbackrest {' '.join(args)} exited {result.returncode}: {result.stdout[-2000:]}"
                             f"{result.stderr[-2000:]}")
        return elapsed, result.stdout

    def pgbench(self, *args: str) -> str:
        environ = tool_environ(client_environ(self.settings, self.env, dbname="pgbench"))
        result = subprocess.run([str(self.bindir / "pgbench"), *args], env=environ, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise SystemExit(f"pgbench {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result.stdout + result.stderr

    def archive_with(self, tool: str) -> None:
        """The archive_command each tool is deployed with (a reload, no restart)."""
        command = (wal_enable.archive_command(self.settings, self.env) if tool == "ours" else
                   f"pgbackrest --config={self.pgbr_conf} --stanza=bench archive-push %p")
        with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
            alter_system(conn, {"archive_command": command})

    def query(self, text: str, port: int | None = None, params: tuple[Any, ...] = ()) -> Any:
        # walbench's roles get walbench's passwords when a restore opens there (its own pgpass)
        passfile = cluster_for(self.settings, self.settings.env("walbench")).passfile if port == self.ports[1] \
            else self.cluster.passfile
        with psycopg.connect(host="127.0.0.1", port=port or self.port, user="cuisine", dbname="cuisine",
                             autocommit=True, passfile=str(passfile), connect_timeout=10) as conn:
            row = conn.execute(text, params or None).fetchone()
        return row[0] if row else None

    # --- backup --------------------------------------------------------------------------------------------
    def backup_ours(self) -> dict[str, Any]:
        self.archive_with("ours")
        seconds, output = self.cli("backup", "create", "--env", "bench", "--type", "full", "--json")
        report = json.loads(output)
        return {"s": round(seconds, 2), "name": report["name"], "size_mb": round(report["size"] / 1e6, 1),
                "in_process_s": report["seconds"], "compression": report["compression"]}

    def backup_pgbackrest(self) -> dict[str, Any]:
        self.archive_with("pgbackrest")
        seconds, _ = self.pgbackrest("backup", "--type=full")
        _, output = self.pgbackrest("info", "--output=json")
        newest = json.loads(output)[0]["backup"][-1]
        self.archive_with("ours")
        return {"s": round(seconds, 2), "label": newest["label"],
                "size_mb": round(newest["info"]["repository"]["delta"] / 1e6, 1)}

    # --- restore -------------------------------------------------------------------------------------------
    def writable_since(self, moment: float, port: int | None = None) -> bool:
        """A server started after `moment` (wall clock) accepts connections and has left recovery."""
        try:
            return bool(self.query("SELECT NOT pg_is_in_recovery() AND "
                                   "extract(epoch FROM pg_postmaster_start_time()) > %s", port, (moment,)))
        except psycopg.OperationalError:
            return False

    @contextlib.contextmanager
    def writable_watch(self, port: int | None = None) -> Iterator[list[float]]:
        """Seconds from entering until a server started after entering (on `port`) first accepted writes, polled
        every 50 ms on a thread while the body runs (empty if it never did): the old server does not count, and a
        private recovery server listens on no TCP port. What an application sees, not when the command returns."""
        moment = time.time()
        started = time.monotonic()
        ready: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set() and not ready:
                if self.writable_since(moment, port):
                    ready.append(time.monotonic() - started)
                stop.wait(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            yield ready
        finally:
            stop.set()
            poller.join()
            if not ready and self.writable_since(moment, port):
                ready.append(time.monotonic() - started)

    def restore_ours(self, name: str) -> dict[str, Any]:
        """The command's wall time, and when the restored server first accepted writes (writable_watch())."""
        with self.writable_watch() as ready:
            seconds, output = self.cli("restore", "database", "--env", "bench", "--backup", name, "--yes", "--json")
        report = json.loads(output)
        opened = report.get("opened") or {}
        rows = self.query("SELECT count(*) FROM recipes")
        return {"s": round(ready[0], 2) if ready else None, "command_s": round(seconds, 2),
                "lay_down_s": report["seconds"], "open_s": opened.get("replay_seconds"), "recipes": rows}

    def restore_pgbackrest(self, label: str) -> dict[str, Any]:
        target = self.work / "pgbackrest-restore"
        shutil.rmtree(target, ignore_errors=True)
        self.own(target)
        log = self.pgbr / "log" / "restored-server.log"
        started = time.monotonic()
        self.pgbackrest("restore", f"--pg1-path={target}", f"--set={label}", "--type=immediate",
                        "--target-action=promote")
        laid = time.monotonic() - started
        options = f"-p {self.ports[2]} -c archive_mode=off"
        subprocess.run([str(self.bindir / "pg_ctl"), "--pgdata", str(target), "--wait", "--timeout", "600",
                        "--log", str(log), "-o", options, "start"], check=True, capture_output=True, cwd="/",
                       env=tool_environ(), **self.as_server_user())
        deadline = time.monotonic() + 600
        while not self.writable_since(0, self.ports[2]):
            if time.monotonic() > deadline:
                raise SystemExit("the server pgBackRest restored did not leave recovery in 10 minutes")
            time.sleep(0.05)
        seconds = time.monotonic() - started
        rows = self.query("SELECT count(*) FROM recipes", self.ports[2])
        subprocess.run([str(self.bindir / "pg_ctl"), "--pgdata", str(target), "--wait", "--mode", "immediate",
                        "stop"], check=True, capture_output=True, cwd="/", env=tool_environ(),
                       **self.as_server_user())
        shutil.rmtree(target)
        return {"s": round(seconds, 2), "restore_s": round(laid, 2), "start_s": round(seconds - laid, 2),
                "recipes": rows}

    # --- archiving under load --------------------------------------------------------------------------------
    def wait_archived(self, deadline: float = 300) -> float:
        """Until nothing waits in archive_status; how long it took."""
        started = time.monotonic()
        status = self.cluster.datadir / "pg_wal" / "archive_status"
        while any(name.endswith(".ready") for name in os.listdir(status)):
            if time.monotonic() - started > deadline:
                raise SystemExit("the archiver did not catch up within 5 minutes")
            time.sleep(0.1)
        return time.monotonic() - started

    def lag(self, seconds: int, clients: int, bulk: bool = False) -> dict[str, Any]:
        """pgbench's TPC-B-like transactions, or (`bulk`) 1,000-row INSERTs that write WAL several times faster."""
        self.archive_with("ours")
        with connect(self.settings, self.env, "bench", dbname="pgbench") as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS wal_bulk (id int, pad text)")
            conn.execute("TRUNCATE wal_bulk")
            conn.execute("SELECT pg_switch_wal()")
        script = self.work / "bulk.sql"
        script.write_text("INSERT INTO wal_bulk SELECT g, repeat('x', 200) FROM generate_series(1, 1000) g;\n")
        workload = ["-f", str(script)] if bulk else []
        self.wait_archived()
        status = self.cluster.datadir / "pg_wal" / "archive_status"
        ledger = wal_enable.spool_dir(self.settings, self.env) / "pushed"
        samples: list[tuple[int, int, int]] = []
        stop = threading.Event()

        def sample() -> None:
            last = None
            with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
                while not stop.is_set():
                    lsn, archived = row_of(
                        conn, "SELECT pg_current_wal_lsn()::text, last_archived_wal FROM pg_stat_archiver")
                    ready = [n[:-6] for n in os.listdir(status) if n.endswith(".ready")]
                    pushed = set(os.listdir(ledger)) if ledger.is_dir() else set()
                    if archived and wal_names.is_segment(archived):
                        last = wal_names.segment_number(archived)
                    current = wal_names.segment_of(wal_names.parse_lsn(lsn))
                    behind = current - last - 1 if last is not None else 0
                    samples.append((behind, len(ready), len([n for n in ready if n not in pushed])))
                    stop.wait(0.25)

        with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
            start_lsn = row_of(conn, "SELECT pg_current_wal_lsn()::text")[0]
            failed_before = row_of(conn, "SELECT failed_count FROM pg_stat_archiver")[0]
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            output = self.pgbench("-n", "-c", str(clients), "-j", "2", "-T", str(seconds), *workload)
        finally:
            with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
                end_lsn = row_of(conn, "SELECT pg_current_wal_lsn()::text")[0]
            drain = self.wait_archived()
            stop.set()
            sampler.join()
        with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
            failed = row_of(conn, "SELECT failed_count FROM pg_stat_archiver")[0] - failed_before
        with connect(self.settings, self.env, "bench", dbname="pgbench") as conn:
            conn.execute("TRUNCATE wal_bulk")  # the next backups must copy the same data as the first
        tps = next((line.split("=")[1].split()[0] for line in output.splitlines() if line.startswith("tps")), "?")
        wal_mb = (wal_names.parse_lsn(end_lsn) - wal_names.parse_lsn(start_lsn)) / 1e6
        return {"pgbench_tps": float(tps), "wal_mb_s": round(wal_mb / seconds, 1),
                "segments": round(wal_mb * 1e6 / wal_names.DEFAULT_SEGMENT_SIZE),
                "max_behind": max(s[0] for s in samples), "max_ready": max(s[1] for s in samples),
                "max_ready_not_stored": max(s[2] for s in samples),
                "mean_behind": round(statistics.mean(s[0] for s in samples), 2),
                "drain_after_s": round(drain, 2), "failed": failed, "samples": len(samples)}

    # --- wal push latency ------------------------------------------------------------------------------------
    def push_latency(self, count: int, attempt: int) -> dict[str, Any]:
        """`wal push` and `pgbackrest archive-push` timed on the newest `count` segments archived by the lag run."""
        access = wal_access.load(self.config, "bench", spool=self.work / "fetch-spool")
        listed = wal_archive.list_archive(open_repository(self.settings, self.env), "bench")
        segments = [item.name for item in listed if wal_names.is_segment(item.name)][-count - 1:-1]
        stage = self.work / f"stage-{attempt}"
        shutil.rmtree(stage, ignore_errors=True)
        self.own(stage, 0o711)
        self.own(stage / "pg_wal" / "archive_status")
        for name in segments:
            wal_fetch.fetch(access, name, stage / "pg_wal" / name)
            os.chmod(stage / "pg_wal" / name, 0o600)
            if self.os_user:
                shutil.chown(stage / "pg_wal" / name, self.os_user)
        wal_fetch.clear_prefetched(self.work / "fetch-spool")
        walbench = self.settings.env("walbench")
        area = self.work / "walbench-repository" / "wal"
        shutil.rmtree(area, ignore_errors=True)
        wal_enable.grant_server_access(self.settings, walbench, self.os_user)
        wal_enable.write_wal_signing_key(self.settings, walbench, self.os_user)  # `wal push` signs every record
        ours_argv = shlex.split(wal_enable.archive_command(self.settings, walbench).replace(" %p", ""))
        environ = {key: value for key, value in tool_environ().items() if key != "CUISINE_DB_CONFIG"}
        pgbr_environ = {**environ, "PGPASSFILE": str(self.pgbr / "pgpass")}
        ours: list[float] = []
        theirs: list[float] = []
        cpu: dict[str, list[float]] = {"ours": [], "pgbackrest": []}
        # System time and minor page faults apart: where a call's CPU grows with the machine's state (stop 18).
        system: dict[str, list[float]] = {"ours": [], "pgbackrest": []}
        faults: dict[str, list[float]] = {"ours": [], "pgbackrest": []}
        for index, name in enumerate(segments):
            runs = [("ours", [*ours_argv, f"pg_wal/{name}"], environ, ours),
                    ("pgbackrest", ["pgbackrest", f"--config={self.pgbr_conf}", "--stanza=bench", "archive-push",
                                    str(stage / "pg_wal" / name)], pgbr_environ, theirs)]
            for tool, argv, env, into in runs if index % 2 == 0 else reversed(runs):
                started = time.monotonic()
                process = subprocess.Popen(argv, cwd=stage, env=env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, **self.as_server_user())
                _, status, usage = os.wait4(process.pid, 0)  # the CPU it used: a figure the load does not inflate
                into.append(time.monotonic() - started)
                cpu[tool].append(usage.ru_utime + usage.ru_stime)
                system[tool].append(usage.ru_stime)
                faults[tool].append(usage.ru_minflt)
                process.returncode = os.waitstatus_to_exitcode(status)
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                if process.returncode != 0:
                    raise SystemExit(f"{argv[0]} ... {name} exited {process.returncode}: {error[-2000:]}")
        shutil.rmtree(stage)
        return {"segments": len(segments), "ours_p50_ms": round(median(ours) * 1000),
                "ours_p90_ms": round(percentile(ours, 0.9) * 1000), "ours_max_ms": round(max(ours) * 1000),
                "pgbackrest_p50_ms": round(median(theirs) * 1000),
                "pgbackrest_p90_ms": round(percentile(theirs, 0.9) * 1000),
                "ours_cpu_p50_ms": round(median(cpu["ours"]) * 1000),
                "pgbackrest_cpu_p50_ms": round(median(cpu["pgbackrest"]) * 1000),
                "ours_sys_p50_ms": round(median(system["ours"]) * 1000),
                "pgbackrest_sys_p50_ms": round(median(system["pgbackrest"]) * 1000),
                "ours_minflt_p50": round(median(faults["ours"])),
                "pgbackrest_minflt_p50": round(median(faults["pgbackrest"]))}

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            cluster_for(self.settings, self.env).destroy()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="build here and reuse what is there (default: a temp folder)")
    # below the kernel's ephemeral range (32768-60999), where the test suite's clusters pick their ports
    parser.add_argument("--port", type=int, default=26450, help="the cluster's port; the next two are used too")
    parser.add_argument("--keep", action="store_true", help="keep the cluster and data for the next invocation")
    parser.add_argument("--phases", default="backup,restore,lag,push,bulk")
    parser.add_argument("--seconds", type=int, default=60, help="pgbench duration of the lag phase")
    parser.add_argument("--clients", type=int, default=4, help="pgbench clients")
    parser.add_argument("--segments", type=int, default=16, help="segments timed per run in the push phase")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-physical-", dir="/tmp"))
    bench = Bench(work.resolve(), args.scale, args.port)
    runs: list[dict[str, Any]] = []
    try:
        facts = bench.build()
        for attempt in range(args.repeat):
            run: dict[str, Any] = {"load_before": load_average()}
            order = ["ours", "pgbackrest"] if attempt % 2 == 0 else ["pgbackrest", "ours"]
            run["first"] = order[0]
            if phases & {"backup", "restore"}:
                for tool in order:
                    stamp(f"run {attempt + 1}: backup, {tool} (load {load_average()})")
                    run[f"backup_{tool}"] = bench.backup_ours() if tool == "ours" else bench.backup_pgbackrest()
            if "restore" in phases:
                for tool in order:
                    stamp(f"run {attempt + 1}: restore, {tool} (load {load_average()})")
                    run[f"restore_{tool}"] = (bench.restore_ours(run["backup_ours"]["name"]) if tool == "ours" else
                                              bench.restore_pgbackrest(run["backup_pgbackrest"]["label"]))
            if phases & {"lag", "push"}:
                stamp(f"run {attempt + 1}: pgbench {args.seconds}s, archiving with wal push (load {load_average()})")
                run["lag"] = bench.lag(args.seconds, args.clients)
            if "push" in phases:
                stamp(f"run {attempt + 1}: wal push latency (load {load_average()})")
                run["push"] = bench.push_latency(args.segments, attempt)
            if "bulk" in phases:
                stamp(f"run {attempt + 1}: pgbench bulk INSERTs {args.seconds // 2}s (load {load_average()})")
                run["lag_bulk"] = bench.lag(args.seconds // 2, 2, bulk=True)
            run["load_after"] = load_average()
            if "backup" in phases:
                run["backup_ratio"] = round(run["backup_ours"]["s"] / run["backup_pgbackrest"]["s"], 3)
            if "restore" in phases:
                run["restore_ratio"] = round(run["restore_ours"]["s"] / run["restore_pgbackrest"]["s"], 3)
            runs.append(run)
            stamp(json.dumps(run))
        summary: dict[str, Any] = {"postgres": MAJOR, **facts, "repeat": args.repeat, "runs": runs}

        def pick(phase: str, key: str) -> list[float]:
            return [float(r[phase][key]) for r in runs if phase in r]

        medians: dict[str, Any] = {}
        if "backup" in phases:
            medians.update(backup_ours_s=median(pick("backup_ours", "s")),
                           backup_pgbackrest_s=median(pick("backup_pgbackrest", "s")))
            medians["backup_ratio"] = round(medians["backup_ours_s"] / medians["backup_pgbackrest_s"], 3)
            medians["backup_ratio_goal"] = 0.6
        if "restore" in phases:
            medians.update(restore_ours_s=median(pick("restore_ours", "s")),
                           restore_ours_command_s=median(pick("restore_ours", "command_s")),
                           restore_pgbackrest_s=median(pick("restore_pgbackrest", "s")))
            medians["restore_ratio"] = round(medians["restore_ours_s"] / medians["restore_pgbackrest_s"], 3)
            medians["restore_ratio_goal"] = 1.0
        if runs and "push" in phases:
            medians.update(push_p50_ms=median(pick("push", "ours_p50_ms")),
                           pgbackrest_push_p50_ms=median(pick("push", "pgbackrest_p50_ms")), push_p50_goal_ms=120,
                           push_cpu_p50_ms=median(pick("push", "ours_cpu_p50_ms")),
                           pgbackrest_push_cpu_p50_ms=median(pick("push", "pgbackrest_cpu_p50_ms")),
                           push_sys_p50_ms=median(pick("push", "ours_sys_p50_ms")),
                           push_minflt_p50=median(pick("push", "ours_minflt_p50")),
                           pgbackrest_push_minflt_p50=median(pick("push", "pgbackrest_minflt_p50")))
        if runs and phases & {"lag", "push"}:
            medians.update(lag_max_behind=max(pick("lag", "max_behind")), lag_goal=2,
                           lag_max_ready=max(pick("lag", "max_ready")))
        if runs and "bulk" in phases:
            medians.update(bulk_lag_max_behind=max(pick("lag_bulk", "max_behind")),
                           bulk_wal_mb_s=median(pick("lag_bulk", "wal_mb_s")))
        summary["medians"] = medians
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    finally:
        if not args.keep:
            bench.destroy()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

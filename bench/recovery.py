"""Restore and replay until writable: ours against pgBackRest (asynchronous archive-get) and the floor, same run.

Builds once (bench/physical.py's cluster: PostgreSQL 15, seeded at `--scale`, a pgbench database, `wal enable`, a
pgBackRest stanza), with both tools archiving every segment (archive_command = our `wal push` and then
`pgbackrest archive-push`, asynchronous). Then: a full backup with each tool, and `--wal-gb` of WAL written after
them (pgbench, 1,000-row INSERTs and a CREATE INDEX, in turns), archived by both. The floor is prepared from the
same material: pgBackRest's backup laid down once (kept pristine, copied before each run, not timed) and every
segment decrypted and decompressed into a local folder.

`--repeat` runs, each timing the three in an order that rotates from run to run (a sync before each, untimed):
  ours       `cuisine-db restore database --backup NAME --no-open` (lay down; the spool's prefetcher starts with
             it) then `cuisine-db restore apply-logs` to the end of the archive, into a second environment
             (`walbench`), until the restored server accepts writes;
  pgbackrest `pgbackrest restore` (`--type=default`: to the end of the archive; `archive-async=y`,
             `archive-get-queue-max` sized to hold `--queue-gb`, `process-max` = cores) then `pg_ctl start` until it
             leaves recovery;
  floor      the laid-down copy started with `restore_command = 'cp <folder>/%f %p'` until it leaves recovery.
Each reports the seconds until writable, the replay's share, the redo rate (MB of WAL from the backup's start to
the archive's end, per second of replay), and the CPU seconds spent outside PostgreSQL (the tool's own commands
by rusage, plus every non-`postgres` process of the server's OS user sampled from /proc every 10 ms: calls shorter
than that are undercounted). Then the per-call path (`--calls` consecutive segments, tools alternating per run,
p50 of the calls after the first), on segments both archives hold already: `wal push` answered from its ledger
(the first call of a batch found them stored) against `pgbackrest archive-push` (synchronous: its asynchronous mode
works from the real cluster's archive_status), and `wal fetch` served from the spool against `pgbackrest archive-get`
served from its asynchronous queue; every call as PostgreSQL makes it (`/bin/sh -c` with %f and %p replaced), wall
and CPU (the shell and what it ran, by rusage). Last, once and out of the alternation, the DR drill
(`cuisine-db dr-drill --env bench`) on the bench's own newest full backup and archive, and the RTO it reports.

Prints every run with the load average, then medians and ratios as JSON. Small: `--scale 1 --wal-gb 0.2`.

    .venv/bin/python bench/recovery.py --scale 40 --wal-gb 4 --repeat 3 [--workdir /work/tmp/recbench --keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from physical import MAJOR, Bench, load_average, median, percentile, stamp

from cuisine_db.backup.wal import access as wal_access
from cuisine_db.backup.wal import archive as wal_archive
from cuisine_db.backup.wal import enable as wal_enable
from cuisine_db.backup.wal import fetch as wal_fetch
from cuisine_db.backup.wal import push as wal_push
from cuisine_db.backup.wal import spool as wal_spool
from cuisine_db.backup.wal import wal_names
from cuisine_db.postgres import connect
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.runner import tool_environ
from cuisine_db.postgres.server_settings import alter_system
from cuisine_db.storage import open_repository

PREPARED = "recovery-prepared.json"
TOOLS = ("ours", "pgbackrest", "floor")


class OutsideCpu:
    """CPU seconds of the server user's processes that are not PostgreSQL, sampled from /proc while running."""

    def __init__(self, uid: int) -> None:
        self.uid = uid
        self.seen: dict[tuple[int, int], float] = {}  # (pid, start time) -> its CPU seconds, last seen
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while not self.stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    if os.stat(f"/proc/{entry}").st_uid != self.uid:
                        continue
                    with open(f"/proc/{entry}/stat") as handle:
                        text = handle.read()
                except OSError:
                    continue
                command = text[text.index("(") + 1:text.rindex(")")]
                if command == "postgres":
                    continue
                fields = text[text.rindex(")") + 2:].split()
                cpu = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
                self.seen[(int(entry), int(fields[19]))] = cpu
            self.stop.wait(0.01)

    def __enter__(self) -> OutsideCpu:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def timed(argv: list[str], **kwargs: Any) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the command and the children it waited for), stdout."""
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL, **kwargs)
    reader = threading.Thread(target=lambda: output.append(process.stdout.read() if process.stdout else ""))
    output: list[str] = []
    reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    reader.join()
    errors = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... exited {os.waitstatus_to_exitcode(status)}: {errors[-3000:]}"
                         f"{output[0][-2000:] if output else ''}")
    return time.monotonic() - started, usage.ru_utime + usage.ru_stime, output[0] if output else ""


class RecoveryBench(Bench):
    """bench/physical.py's cluster, with both tools archiving and the WAL written after the backups."""

    runs_of_ours = 0

    def write_config(self) -> None:
        """bench/physical.py's, but `walbench` (restored into here, never started there) keeps its socket in its own
        run folder: it runs as its own OS user, who cannot use the bench user's socket folder."""
        super().write_config()
        text = self.config.read_text()
        head, sep, tail = text.partition("[environments.walbench]")
        tail = "\n".join(line for line in tail.splitlines() if not line.startswith("unix_socket_directories"))
        self.config.write_text(head + sep + tail + "\n")

    def archive_with(self, tool: str) -> None:
        ours = wal_enable.archive_command(self.settings, self.env).replace(" %p", "")
        theirs = f"pgbackrest --config={self.pgbr_conf} --stanza=bench archive-push"
        with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
            alter_system(conn, {"archive_command": f"{ours} %p && {theirs} %p"})

    def tune_pgbackrest(self, queue_gb: float) -> None:
        text = self.pgbr_conf.read_text()
        if "archive-async" not in text:
            extra = (f"archive-async=y\narchive-get-queue-max={int(queue_gb * (1 << 30))}\n"
                     f"archive-push-queue-max={8 << 30}\n")
            text = text.replace("process-max=2\n", f"process-max={os.cpu_count() or 2}\n{extra}")
            self.pgbr_conf.write_text(text)

    def prepare(self, wal_gb: float, queue_gb: float) -> dict[str, Any]:
        if (self.work / PREPARED).exists():
            return dict(json.loads((self.work / PREPARED).read_text()))
        ensure_up(self.settings, self.env)
        self.tune_pgbackrest(queue_gb)
        self.archive_with("both")
        ours = self.backup_ours()
        theirs = self.backup_pgbackrest()
        self.archive_with("both")
        with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
            start = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        stamp(f"writing {wal_gb} GB of WAL (pgbench, bulk INSERTs, CREATE INDEX; load {load_average()})")
        script = self.work / "bulk.sql"
        script.write_text("INSERT INTO wal_bulk SELECT g, repeat('x', 200) FROM generate_series(1, 1000) g;\n")
        with connect(self.settings, self.env, "bench", dbname="pgbench") as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS wal_bulk (id int, pad text)")
        target = wal_names.parse_lsn(str(start[0] if start else "0/0")) + int(wal_gb * 1e9)
        turn = 0
        while True:
            with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
                row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            if row is None or wal_names.parse_lsn(str(row[0])) >= target:
                break
            kind = ("pgbench", "bulk", "index")[turn % 3]
            turn += 1
            if kind == "pgbench":
                self.pgbench("-n", "-c", "4", "-j", "2", "-T", "5")
            elif kind == "bulk":
                self.pgbench("-n", "-c", "2", "-j", "2", "-T", "5", "-f", str(script))
            else:
                with connect(self.settings, self.env, "bench", dbname="pgbench") as conn:
                    conn.execute("DROP INDEX IF EXISTS wal_bulk_id")
                    conn.execute("CREATE INDEX wal_bulk_id ON wal_bulk (id, pad)")
        with connect(self.settings, self.env, "bench", dbname="postgres") as conn:
            conn.execute("SELECT pg_switch_wal()")
            end = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        self.wait_archived(deadline=3600)
        # The source stops here, so the archive's end stays where it is: left running, autovacuum went on writing
        # WAL (20 MB/s after the bulk INSERTs) that the tools then replayed to different ends.
        cluster_for(self.settings, self.env).stop()
        facts = {"backup_ours": ours["name"], "backup_pgbackrest": theirs["label"],
                 "wal_start": str(start[0]) if start else None, "wal_end": str(end[0]) if end else None,
                 "wal_mb": round((wal_names.parse_lsn(str(end[0] if end else "0/0"))
                                  - wal_names.parse_lsn(str(start[0] if start else "0/0"))) / 1e6, 1)}
        self.prepare_floor(facts)
        (self.work / PREPARED).write_text(json.dumps(facts))
        return facts

    def prepare_floor(self, facts: dict[str, Any]) -> None:
        """pgBackRest's backup laid down once (kept pristine), and every archived segment, plain, in a folder."""
        pristine = self.work / "floor-pristine"
        shutil.rmtree(pristine, ignore_errors=True)
        self.own(pristine)
        self.pgbackrest("restore", f"--pg1-path={pristine}", f"--set={facts['backup_pgbackrest']}", "--type=none")
        folder = self.work / "floor-wal"
        self.own(folder, 0o755)
        access = wal_access.load(self.config, "bench", spool=self.work / "floor-spool")
        listed = wal_archive.list_archive(open_repository(self.settings, self.env), "bench")
        for item in listed:
            if not (folder / item.name).exists():
                wal_fetch.fetch(access, item.name, folder / item.name)
                (folder / item.name).chmod(0o644)
        wal_fetch.clear_prefetched(self.work / "floor-spool")

    # --- the three ways, until writable -----------------------------------------------------------------
    def replay_ours(self, facts: dict[str, Any]) -> dict[str, Any]:
        """Until the restored server accepts writes (writable_watch(), as for the other two ways), not until the
        command returns: after opening, apply-logs deletes the data directory the restore set aside (the previous
        run's, 2-3 GB here, 1-2 s), which is not downtime. Both figures are kept."""
        walbench = self.settings.env("walbench")
        environ = {**self.environ}
        cli = wal_enable.program()
        uid = pwd.getpwnam(self.os_user).pw_uid if self.os_user else os.getuid()
        with OutsideCpu(uid) as sampled:
            lay_s, lay_cpu, _ = timed([*cli, "restore", "database", "--env", "walbench", "--backup",
                                       facts["backup_ours"], "--no-open", "--yes", "--json"],
                                      env=environ, cwd=self.work)
            with self.writable_watch(self.ports[1]) as ready:
                apply_s, apply_cpu, _ = timed([*cli, "restore", "apply-logs", "--env", "walbench", "--json"],
                                              env=environ, cwd=self.work)
        if not ready:
            raise SystemExit("the restored walbench server never accepted writes")
        cluster = cluster_for(self.settings, walbench)
        cluster.stop()
        self.runs_of_ours += 1  # its private server's log, kept per run: where each replay's time went
        with contextlib.suppress(OSError):
            shutil.copy(cluster.home / "run" / "recovery.log", self.work / f"ours-{self.runs_of_ours}-recovery.log")
        replay = ready[0]
        return {"s": round(lay_s + replay, 2), "command_s": round(lay_s + apply_s, 2), "lay_down_s": round(lay_s, 2),
                "replay_s": round(replay, 2), "redo_mb_s": round(facts["wal_mb"] / replay, 1),
                "cpu_outside_s": round(lay_cpu + apply_cpu + sampled.seconds, 2)}

    def start_until_writable(self, data: Path, options: str, started: float) -> float:
        log = self.pgbr / "log" / f"{data.name}.log"  # the server user writes it
        subprocess.run([str(self.bindir / "pg_ctl"), "--pgdata", str(data), "--log", str(log), "-o", options,
                        "start"], check=True, capture_output=True, cwd="/", env=tool_environ(),
                       **self.as_server_user())
        deadline = time.monotonic() + 7200
        while not self.writable_since(0, self.ports[2]):
            if time.monotonic() > deadline:
                raise SystemExit(f"{data} did not leave recovery in 2 hours; see {log}")
            time.sleep(0.05)
        return time.monotonic() - started

    def stop_and_remove(self, data: Path) -> None:
        subprocess.run([str(self.bindir / "pg_ctl"), "--pgdata", str(data), "--wait", "--mode", "immediate", "stop"],
                       check=False, capture_output=True, cwd="/", env=tool_environ(), **self.as_server_user())
        shutil.rmtree(data, ignore_errors=True)

    def stop_pgbackrest_async(self) -> None:
        """pgBackRest's asynchronous archive-get outlives the call that started it, filling its queue: stopped before
        the next timed step (its restore refuses a spool folder being written, and it would take CPU from any run)."""
        def running() -> list[int]:
            found = []
            for entry in os.listdir("/proc"):
                try:
                    words = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                except (OSError, ValueError):
                    continue
                if words and words[0].endswith(b"pgbackrest") and f"--config={self.pgbr_conf}".encode() in words \
                        and any(word.startswith(b"archive-get") for word in words):
                    found.append(int(entry))
            return found

        for signal_number in (signal.SIGTERM, signal.SIGKILL):
            for pid in running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal_number)
            deadline = time.monotonic() + 10
            while running() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not running():
                return

    def replay_pgbackrest(self, facts: dict[str, Any]) -> dict[str, Any]:
        target = self.work / "pgbackrest-recovery"
        shutil.rmtree(target, ignore_errors=True)
        self.stop_pgbackrest_async()
        shutil.rmtree(self.pgbr / "spool" / "archive", ignore_errors=True)
        self.own(target)
        uid = pwd.getpwnam(self.os_user).pw_uid if self.os_user else os.getuid()
        argv = ["pgbackrest", f"--config={self.pgbr_conf}", "--stanza=bench", "restore", f"--pg1-path={target}",
                f"--set={facts['backup_pgbackrest']}", "--type=default"]
        started = time.monotonic()
        with OutsideCpu(uid) as sampled:
            lay_s, lay_cpu, _ = timed(argv, cwd="/", env={**tool_environ(), "PGPASSFILE": str(self.pgbr / "pgpass")},
                                      **self.as_server_user())
            seconds = self.start_until_writable(target, f"-p {self.ports[2]} -c archive_mode=off", started)
        self.stop_and_remove(target)
        self.stop_pgbackrest_async()
        replay = seconds - lay_s
        return {"s": round(seconds, 2), "lay_down_s": round(lay_s, 2), "replay_s": round(replay, 2),
                "redo_mb_s": round(facts["wal_mb"] / replay, 1) if replay else None,
                "cpu_outside_s": round(lay_cpu + sampled.seconds, 2)}

    def replay_floor(self, facts: dict[str, Any]) -> dict[str, Any]:
        target = self.work / "floor-recovery"
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-a", str(self.work / "floor-pristine"), str(target)], check=True)
        (target / "recovery.signal").touch()
        if self.os_user:
            shutil.chown(target / "recovery.signal", self.os_user)
        command = f"cp {self.work / 'floor-wal'}/%f %p"
        options = f"-p {self.ports[2]} -c archive_mode=off -c {shlex.quote(f'restore_command={command}')}"
        uid = pwd.getpwnam(self.os_user).pw_uid if self.os_user else os.getuid()
        started = time.monotonic()
        with OutsideCpu(uid) as sampled:
            seconds = self.start_until_writable(target, options, started)
        self.stop_and_remove(target)
        return {"s": round(seconds, 2), "lay_down_s": 0.0, "replay_s": round(seconds, 2),
                "redo_mb_s": round(facts["wal_mb"] / seconds, 1) if seconds else None,
                "cpu_outside_s": round(sampled.seconds, 2)}

    # --- per call --------------------------------------------------------------------------------------------
    def dr_drill(self) -> dict[str, Any]:
        """`make dr-drill env=bench` (the dr-drill CLI) once, after the timed runs: the runbook's Complete Database
        Failure rehearsed on a scratch copy from the bench's own newest full backup (ours) and WAL archive, and the
        recovery time (RTO) it reports. Its data-loss window counts from the archive's last transaction, written
        when the bench was prepared, so it says how old the material is, not how good the archiving is."""
        load_before = load_average()
        try:
            seconds, cpu, output = timed([*wal_enable.program(), "dr-drill", "--env", "bench", "--json"],
                                         env=self.environ, cwd=self.work)
        except SystemExit as exc:  # the drill's own failure is a figure of the run, not the end of it
            return {"error": str(exc)[-1500:], "load_before": load_before, "load_after": load_average()}
        report = json.loads(output)
        return {"rto_s": report["recovery_seconds"], "wall_s": round(seconds, 2), "cpu_s": round(cpu, 2),
                "backup": report["backup"], "ok": report["ok"], "reached_lsn": report["reached_lsn"],
                "data_loss_s": report["data_loss_seconds"],
                "steps_s": {step["command"]: step["seconds"] for step in report["steps"]},
                "load_before": load_before, "load_after": load_average()}

    def per_call(self, count: int, attempt: int) -> dict[str, Any]:
        """Consecutive calls as PostgreSQL makes them: pushes of `count` .ready segments (the first of a batch
        pushes the others ahead; the rest are answered from the ledger / pgBackRest's queue), then fetches of
        `count` segments (served from the spool / pgBackRest's queue after the first)."""
        folder = self.work / "floor-wal"
        segments = sorted(name for name in os.listdir(folder) if wal_names.is_segment(name))[:count]
        results: dict[str, Any] = {}
        order = ["ours", "pgbackrest"] if attempt % 2 == 0 else ["pgbackrest", "ours"]
        environ = {key: value for key, value in tool_environ().items() if key != "CUISINE_DB_CONFIG"}
        pgbr_environ = {**environ, "PGPASSFILE": str(self.pgbr / "pgpass")}
        for tool in order:
            stage = self.work / f"calls-{tool}"
            shutil.rmtree(stage, ignore_errors=True)
            self.own(stage, 0o711)
            self.own(stage / "pg_wal" / "archive_status")
            for name in segments:
                shutil.copyfile(folder / name, stage / "pg_wal" / name)
                (stage / "pg_wal" / "archive_status" / f"{name}.ready").touch()
                if self.os_user:
                    shutil.chown(stage / "pg_wal" / name, self.os_user)
                    shutil.chown(stage / "pg_wal" / "archive_status" / f"{name}.ready", self.os_user)
            if tool == "ours":
                # Into the archive that holds them already (as pgBackRest's below): the first call of each batch
                # finds them stored and notes the batch in the ledger, which answers the calls that follow.
                push = wal_enable.archive_command(self.settings, self.env)
                ledger = wal_enable.spool_dir(self.settings, self.env) / wal_push.LEDGER
                for name in segments:  # what an earlier run's batches noted: the first call must push a batch
                    (ledger / name).unlink(missing_ok=True)
                spool_dir = self.work / "calls-spool"
                wal_spool.stop(spool_dir)
                self.own(spool_dir)
                identity = stage / "identity"
                shutil.copyfile(self.key, identity)
                identity.chmod(0o600)
                if self.os_user:
                    shutil.chown(identity, self.os_user)
                fetch = wal_enable.restore_command(self.settings, self.env, spool=spool_dir, identity_file=identity)
                pushes = [as_postgres(push, name, f"pg_wal/{name}") for name in segments]
                fetches = [as_postgres(fetch, name, f"restored/{name}") for name in segments]
                env = environ
            else:
                # archive-push of segments the archive already holds (as ours answers from its ledger), synchronous:
                # its asynchronous mode pushes what the real cluster's archive_status lists, not this folder.
                base = shlex.join(["pgbackrest", f"--config={self.pgbr_conf}", "--stanza=bench"])
                shutil.rmtree(self.pgbr / "spool" / "archive" / "bench" / "in", ignore_errors=True)
                sync = "--no-archive-async --reset-archive-push-queue-max"
                pushes = [as_postgres(f"{base} {sync} archive-push %p", name, str(stage / "pg_wal" / name))
                          for name in segments]
                fetches = [as_postgres(f"{base} archive-get %f %p", name, str(stage / "restored" / name))
                           for name in segments]
                env = pgbr_environ
            self.own(stage / "restored")
            pushed = []
            for name, argv in zip(segments, pushes, strict=True):
                pushed.append(timed(argv, cwd=stage, env=env, **self.as_server_user())[:2])
                status = stage / "pg_wal" / "archive_status"  # as PostgreSQL marks an archived file, untimed
                os.replace(status / f"{name}.ready", status / f"{name}.done")
            # After the first (a miss that starts the fetching ahead), each call is timed once its segment is in the
            # tool's queue (our spool, pgBackRest's async queue): the figure is a queue-served call's, whatever the
            # fetching ahead keeps up with on this machine (the wait, untimed, is reported).
            queue = (self.work / "calls-spool" / wal_spool.FOLDER if tool == "ours"
                     else self.pgbr / "spool" / "archive" / "bench" / "in")
            fetched = []
            waited = 0.0
            for index, (name, argv) in enumerate(zip(segments, fetches, strict=True)):
                started = time.monotonic()
                while index and not (queue / name).exists() and time.monotonic() - started < 120:
                    time.sleep(0.005)
                waited += time.monotonic() - started
                fetched.append(timed(argv, cwd=stage, env=env, **self.as_server_user())[:2])
            results[f"fetch_{tool}_queue_wait_s"] = round(waited, 2)
            if tool == "ours":
                wal_spool.stop(self.work / "calls-spool")
            else:
                self.stop_pgbackrest_async()
            for kind, calls in (("push", pushed[1:]), ("fetch", fetched[1:])):  # in ms: median() keeps 3 decimals
                results[f"{kind}_{tool}_p50_ms"] = round(median([wall * 1000 for wall, _ in calls]), 1)
                results[f"{kind}_{tool}_p90_ms"] = round(percentile([wall * 1000 for wall, _ in calls], 0.9), 1)
                results[f"{kind}_{tool}_cpu_p50_ms"] = round(median([cpu * 1000 for _, cpu in calls]), 1)
            shutil.rmtree(stage, ignore_errors=True)
        return results


def as_postgres(command: str, name: str, path: str) -> list[str]:
    """`command` as PostgreSQL runs an archive_command or restore_command: %f, %p and %% replaced, through /bin/sh."""
    replaced = re.sub("%([fp%])", lambda found: {"f": name, "p": path, "%": "%"}[found.group(1)], command)
    return ["/bin/sh", "-c", replaced]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=40, help="Cuisine Code seed scale (40: over 1.5 GB of tables)")
    parser.add_argument("--wal-gb", type=float, default=4.0, help="WAL written after the backups")
    parser.add_argument("--queue-gb", type=float, default=1.0, help="pgBackRest's archive-get-queue-max")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=16, help="consecutive segments per tool in the per-call phase")
    parser.add_argument("--workdir", type=Path, help="build here and reuse what is there (default: a temp folder)")
    # below the kernel's ephemeral range (32768-60999), where the test suite's clusters pick their ports
    parser.add_argument("--port", type=int, default=26460, help="the cluster's port; the next two are used too")
    parser.add_argument("--keep", action="store_true", help="keep the cluster and data for the next invocation")
    parser.add_argument("--phases", default="replay,calls,drill",
                        help="replay (the timed alternation), calls (per call), drill (the DR drill's RTO, once)")
    parser.add_argument("--ways", default=",".join(TOOLS),
                        help="which ways the replay phase times (a subset of ours,pgbackrest,floor: for profiling one)")
    args = parser.parse_args()
    ways_timed = [tool for tool in TOOLS if tool in args.ways.split(",")]
    if not ways_timed:
        raise SystemExit(f"--ways names none of {', '.join(TOOLS)}")
    if shutil.which("pgbackrest") is None:
        raise SystemExit("pgbackrest is not installed (Debian's pgbackrest: make deps)")
    phases = set(args.phases.split(","))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-recovery-", dir="/tmp"))
    bench = RecoveryBench(work.resolve(), args.scale, args.port)
    runs: list[dict[str, Any]] = []
    try:
        facts = {**bench.build()}
        bench.tune_pgbackrest(args.queue_gb)
        facts |= bench.prepare(args.wal_gb, args.queue_gb)
        cluster_for(bench.settings, bench.env).stop()  # built (started) again by an invocation that reuses it
        stamp(f"prepared: {json.dumps(facts)}")
        ways = {"ours": bench.replay_ours, "pgbackrest": bench.replay_pgbackrest, "floor": bench.replay_floor}
        for attempt in range(args.repeat):
            run: dict[str, Any] = {"load_before": load_average()}
            order = [tool for tool in TOOLS[attempt % 3:] + TOOLS[:attempt % 3] if tool in ways_timed]
            run["order"] = order
            if "replay" in phases:
                for tool in order:
                    # Each way starts with nothing left to write back from the one before it (a 2 GB data directory,
                    # 4 GB replayed), so that none pays for another's writeback. Untimed; 0-1 s in stop 19's runs.
                    settle = time.monotonic()
                    os.sync()
                    stamp(f"run {attempt + 1}: {tool} restore and replay (load {load_average()}; "
                          f"sync {time.monotonic() - settle:.1f}s)")
                    run[tool] = ways[tool](facts)
                for other in ("pgbackrest", "floor"):
                    if "ours" in run and other in run:
                        run[f"ratio_{other}"] = round(run["ours"]["s"] / run[other]["s"], 3)
            if "calls" in phases:
                stamp(f"run {attempt + 1}: per-call push and fetch (load {load_average()})")
                run["calls"] = bench.per_call(args.calls, attempt)
            run["load_after"] = load_average()
            runs.append(run)
            stamp(json.dumps(run))

        def pick(tool: str, key: str) -> list[float]:
            return [float(r[tool][key]) for r in runs if tool in r and r[tool].get(key) is not None]

        medians: dict[str, Any] = {}
        if "replay" in phases:
            for tool in ways_timed:
                for key in ("s", "command_s", "replay_s", "redo_mb_s", "cpu_outside_s"):
                    if pick(tool, key):
                        medians[f"{tool}_{key}"] = median(pick(tool, key))
            for other, goal in (("pgbackrest", 1.0), ("floor", 1.25)):
                if "ours_s" in medians and f"{other}_s" in medians:
                    medians[f"ratio_{other}"] = round(medians["ours_s"] / medians[f"{other}_s"], 3)
                    medians[f"ratio_{other}_goal"] = goal
        if "calls" in phases:
            for kind in ("push", "fetch"):
                for tool in ("ours", "pgbackrest"):
                    for figure in ("p50_ms", "cpu_p50_ms"):
                        medians[f"{kind}_{tool}_{figure}"] = median(pick("calls", f"{kind}_{tool}_{figure}"))
        summary = {"postgres": MAJOR, **facts, "repeat": args.repeat, "runs": runs, "medians": medians}
        if "drill" in phases:  # out of the timed alternation: once, after it
            stamp(f"the DR drill on the bench's backup and archive (load {load_average()})")
            summary["dr_drill"] = bench.dr_drill()
            stamp(json.dumps(summary["dr_drill"]))
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    finally:
        if not args.keep:
            bench.destroy()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

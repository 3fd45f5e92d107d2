"""Point-in-time recovery acceptance, on one production cluster (PostgreSQL 18, or 14 without it) shared by the module:
one full backup, a write workload from two sessions with every commit time known exactly (track_commit_timestamp),
then a destructive burst (DELETE of 1,200 rows, TRUNCATE, DROP TABLE), all archived. The tests read that archive:
ten random targets recovered from the one base backup, db-find-target and the command it prints, a table restore
from the physical backup to a point in time, the full-restore flow (into development), backup status, bad input.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from backup_fixtures import AgeKeys
from cli_support import run_cli
from conftest import available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.backup import catalog, physical_restore, restore_state, targets
from cuisine_db.backup.recovery import PrivateServer
from cuisine_db.postgres import binaries

VICTIMS = 1200
MAJOR = 18 if available(18) is not None or available(14) is None else 14


@dataclass
class Lab:
    project: PitrProject
    backup: str
    commits: dict[int, datetime]  # ledger id -> its transaction's commit time, exactly as the WAL records it
    after_workload: datetime
    burst: dict[str, int] = field(default_factory=dict)  # kind -> xid


def _write(project: PitrProject, writer: int, stop: threading.Event, errors: list[BaseException]) -> None:
    try:
        with project.connect() as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO ledger (writer) VALUES (%s)", (writer,))
                time.sleep(0.004)
    except BaseException as exc:  # reported by the fixture
        errors.append(exc)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys) -> Iterator[Lab]:
    if available(MAJOR) is None:
        binaries.install(MAJOR, cache_dir())
    project = make_pitr_project(tmp_path_factory.mktemp("lab"), MAJOR, age_keys,
                                settings="track_commit_timestamp = \"on\"\n")
    try:
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        with project.connect() as conn:
            conn.execute("CREATE TABLE ledger (id bigserial PRIMARY KEY, writer int NOT NULL)")
            conn.execute("CREATE TABLE victim (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO victim SELECT g, 'row ' || g FROM generate_series(1, %s) g", (VICTIMS,))
            conn.execute("CREATE TABLE emptied (id int)")
            conn.execute("INSERT INTO emptied SELECT generate_series(1, 10)")
            conn.execute("CREATE TABLE doomed (id int)")
        backup = project.make("db-backup", "env=production", "type=full")
        assert backup.returncode == 0, backup.stderr
        name = json.loads(project.ok("backup", "list", "--env", "production", "--json").stdout)[-1]["name"]
        stop, errors = threading.Event(), list[BaseException]()
        threads = [threading.Thread(target=_write, args=(project, n, stop, errors)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        with project.connect() as conn:
            commits = dict(conn.execute("SELECT id, pg_xact_commit_timestamp(xmin) FROM ledger").fetchall())
            after = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
            time.sleep(0.05)
            burst = {}
            for kind, statement in (("DELETE", "DELETE FROM victim"), ("TRUNCATE", "TRUNCATE emptied"),
                                    ("DROP", "DROP TABLE doomed")):
                with conn.transaction():
                    conn.execute(statement)
                    burst[kind] = int(conn.execute("SELECT txid_current()").fetchone()[0])  # type: ignore[index]
        project.wait_archived(project.switch())
        assert len(commits) >= 50, "the workload wrote too little"
        yield Lab(project, name, commits, after, burst)
    finally:
        project.destroy()


def _ledger(server: PrivateServer) -> set[int]:
    with psycopg.connect(server.conninfo("cuisine"), autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM ledger")}


def test_ten_random_targets_recover_exactly_what_committed_by_then(lab: Lab) -> None:
    """Each target: exactly the transactions committed at or before it. Five targets are a transaction's own commit
    time (it is included), five fall between two commits. One base backup: replay goes forward from target to
    target on one laid-down copy, restarted with the next target each time."""
    rng = random.Random(4)
    times = sorted(set(lab.commits.values()))
    chosen: list[datetime] = [rng.choice(times[1:-1]) for _ in range(5)]
    for _ in range(5):
        index = rng.randrange(1, len(times) - 1)
        chosen.append(times[index] + (times[index + 1] - times[index]) / 2)
    chosen = sorted(set(chosen))
    assert len(chosen) >= 8
    settings = lab.project.settings
    env = settings.env("production")
    resolved = catalog.find(settings, env, lab.backup)
    wanted = [targets.parse(moment.isoformat()) for moment in chosen]
    seen: list[set[int]] = []
    with physical_restore.temporary_instance(settings, env, resolved, wanted[0]) as (server, _):
        seen.append(_ledger(server))
        for target in wanted[1:]:
            server.stop()
            server.cleanup()
            server.options = {**server.options, **target.settings()}
            server.start()
            server.wait(pause=True, deadline=300)
            seen.append(_ledger(server))
    for moment, ids in zip(chosen, seen, strict=True):
        expected = {row for row, at in lab.commits.items() if at <= moment}
        assert ids == expected, (f"target {moment}: {len(ids - expected)} too many, {len(expected - ids)} missing")


def test_find_target_lists_the_burst_and_its_command_stops_before_it(lab: Lab) -> None:
    project = lab.project
    found = project.cli("restore", "find-target", "--env", "production", "--json")
    assert found.returncode == 0, found.stderr
    listed = json.loads(found.stdout)["targets"]
    by_xid = {int(item["xid"]): item for item in listed}
    for kind, xid in lab.burst.items():
        assert xid in by_xid, f"{kind} (xid {xid}) not found in {listed}"
        assert by_xid[xid]["kind"].startswith(kind), by_xid[xid]
    delete = by_xid[lab.burst["DELETE"]]
    assert delete["rows"] == VICTIMS
    assert "public.victim" in delete["tables"] or "victim" in delete["tables"]
    assert f"xid={lab.burst['DELETE']} inclusive=0" in delete["apply_logs"]
    text = project.make("db-find-target", "env=production", "table=victim")
    assert text.returncode == 0, text.stderr
    assert delete["restore_tables"] in " ".join(text.stdout.split())
    # Run the printed command (as printed, plus yes=1 for the protected environment): the rows come back.
    command = delete["restore_tables"].split()
    assert command[:2] == ["make", "db-restore-tables"]
    restored = project.make(*command[1:], "yes=1")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM victim").fetchone() == (VICTIMS,), restored.stdout + restored.stderr
        assert conn.execute("SELECT count(*) FROM emptied").fetchone() == (0,)  # untouched: not asked for


def test_restore_tables_from_physical_backup_to_a_time(lab: Lab) -> None:
    """db-restore-tables backup=<full> target=TIME: the table as it was then, the rest of the database untouched."""
    project = lab.project
    moment = sorted(lab.commits.values())[len(lab.commits) // 2]
    expected = {row for row, at in lab.commits.items() if at <= moment}
    with project.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bystander (id int)")
        conn.execute("INSERT INTO bystander VALUES (1)")
        before = conn.execute("SELECT count(*) FROM bystander").fetchone()
    result = project.make("db-restore-tables", "env=production", f"backup={lab.backup}", "tables=ledger",
                          f"target={moment.isoformat()}", "yes=1")
    assert result.returncode == 0, result.stdout + result.stderr
    with project.connect() as conn:
        assert {row[0] for row in conn.execute("SELECT id FROM ledger")} == expected
        assert conn.execute("SELECT count(*) FROM bystander").fetchone() == before
    entry = project.journal()[-1]
    assert entry["command"] == "restore-tables" and entry["details"]["backup"] == lab.backup


def test_full_restore_flow_holds_the_backup_and_apply_logs_then_refuses(lab: Lab) -> None:
    """The runbook's full restore into development (maintenance mode, db-restore, restore open, maintenance-mode
    disable): exactly the backup's data, writable; db-apply-logs afterwards refuses (it would throw the new writes
    away). Turning maintenance mode off never opens the laid-down backup: it refuses while the restore waits, and
    opening is the restore's own explicit step."""
    project = lab.project
    home = project.root / ".cuisine" / "development"
    project.ok("cluster", "up", "--env", "development")

    def run(*step: str) -> None:
        result = project.make(*step)
        logs = "".join(p.read_text()[-3000:] for p in home.rglob("*.log"))
        assert result.returncode == 0, f"make {' '.join(step)}: {result.stdout}\n{result.stderr}\n{logs}"

    run("maintenance-mode", "enable", "env=development", "reason=full restore test")
    run("db-restore", "env=development", f"backup={lab.backup}")
    settings = project.settings
    development = settings.env("development")
    laid = restore_state.pending(settings, development)
    assert laid is not None and laid.backup == lab.backup and not (home / "data" / "postmaster.pid").exists()

    refused = project.cli("maintenance", "disable", "--env", "development")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "not opened yet: maintenance mode stays on" in refused.stderr
    assert "cuisine-db restore open --env development" in refused.stderr
    assert restore_state.pending(settings, development) == laid  # still waiting, not opened
    assert not (home / "data" / "postmaster.pid").exists() and (home / "maintenance.json").exists()

    opened = project.cli("restore", "open", "--env", "development")  # the explicit step of the restore flow
    assert opened.returncode == 0, opened.stdout + opened.stderr
    reopened = restore_state.load(settings, development)
    assert reopened is not None and reopened.state == restore_state.OPENED
    assert (home / "data" / "postmaster.pid").exists()
    # the old data directory went after the server was up, and the operator was told it was up first
    assert laid.kept and f"up and accepting writes; removing the data directory the restore set aside ({laid.kept})" \
        in " ".join(opened.stderr.split()), opened.stderr
    assert not any(home.glob("pre-restore-*"))
    run("maintenance-mode", "disable", "env=development")
    assert not (home / "maintenance.json").exists()
    with project.connect("development") as conn:
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (0,)  # the backup came before the workload
        assert conn.execute("SELECT count(*) FROM victim").fetchone() == (VICTIMS,)
        assert conn.execute("SELECT count(*) FROM doomed").fetchone() == (0,)
        conn.execute("INSERT INTO ledger (writer) VALUES (9)")
        archiving = conn.execute("SHOW archive_mode").fetchone()
    assert archiving == ("off",), "a copy of production must not write into production's archive"
    refused = project.make("db-apply-logs", "env=development")
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert "1 transaction(s) have written to it since" in refused.stderr
    assert project.cli("restore", "apply-logs", "--env", "development").returncode == 4
    with project.connect("development") as conn:
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (1,)  # nothing was thrown away


def test_backup_status_fresh_then_stale(lab: Lab) -> None:
    project = lab.project
    fresh = project.make("db-backup-status", "env=production")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    strict = project.root / "strict.toml"
    strict.write_text(project.config.read_text().replace(
        "[environments.production.wal]\n",
        "[environments.production.wal]\nmax_full_backup_age_hours = 0.0001\nmax_archive_age_minutes = 0.001\n"))
    time.sleep(1)
    stale = _cli_with_config(project, strict, "backup", "status", "--env", "production")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert lab.backup in stale.stdout + stale.stderr
    assert "h old" in " ".join((stale.stdout + stale.stderr).split())


def _cli_with_config(project: PitrProject, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(config, *args, extra=project.environ, cwd=project.root, timeout=300)


@pytest.mark.parametrize("args", [
    ("restore", "apply-logs", "--target", "2026-03-15 12:00:00"),   # no time zone (the unit tests hold the rest)
    ("restore", "apply-logs", "--lsn", "0/3000060", "--xid", "900"),
    ("restore", "apply-logs", "--exclusive"),
    ("restore", "tables", "--backup", "latest", "--tables", "ledger", "--target", "noon", "--yes"),
    ("restore", "find-target", "--min-rows", "0"),
])
def test_bad_input_is_one_line_and_changes_nothing(lab: Lab, args: tuple[str, ...]) -> None:
    project = lab.project
    with project.connect() as conn:
        before = conn.execute("SELECT count(*), max(id) FROM ledger").fetchone()
    state = project.root / ".cuisine" / "production" / "restore.json"
    existed = state.exists()
    result = project.cli(*args, "--env", "production")
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    with project.connect() as conn:  # still up, same rows
        assert conn.execute("SELECT count(*), max(id) FROM ledger").fetchone() == before
    assert state.exists() == existed


def test_targets_before_the_backup_are_refused_with_the_way_out(lab: Lab) -> None:
    """A target before any backup ended cannot be reached: said before anything starts (exit 2: nothing fits)."""
    project = lab.project
    early = (min(lab.commits.values()) - timedelta(days=1)).isoformat()
    result = project.cli("restore", "tables", "--env", "production", "--backup", "latest", "--tables", "ledger",
                         "--target", early, "--yes")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no physical backup" in result.stderr

"""A replica seeded from the repository (the newest full backup and the WAL archive) and a full backup taken from a
replica, on one PostgreSQL 14 production cluster that archives its WAL (the version the replica tests use).

The primary logs every replication command (`log_replication_commands`): each base backup it serves leaves a
BASE_BACKUP line in its log. The fixture's own `type=full` backup shows that the count moves when the primary
serves one; seeding a replica, and backing up from it, must leave it where it was. Rows written after the backup
reach the seeded replica first through the archive (its log says which segments it restored), then by streaming.
A full backup from that replica verifies, and restores (db-restore, db-apply-logs) to the primary's data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backup_fixtures import AgeKeys, table_fingerprints
from conftest import available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.postgres import binaries, topology
from cuisine_db.replicas import lag

MAJOR = 14
BOUND_SECONDS = 2
TABLES = ("kitchens", "recipes")


@dataclass
class Lab:
    project: PitrProject
    backup: str  # the primary's full backup the replica is seeded from
    served_before: int  # BASE_BACKUP commands in the primary's log before that backup
    served: int  # ... and after it, before the seeding
    seeded: Any  # the db-create-replica from=backup run
    after_backup: int  # rows written after the backup, archived before the seeding


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def log_text(datadir: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in sorted((datadir / "log").glob("*")) if path.is_file())


def served(project: PitrProject) -> int:
    """Base backups the primary has served (each is one BASE_BACKUP replication command in its log)."""
    return log_text(project.cluster().datadir).count("command: BASE_BACKUP")


def replica_port(project: PitrProject, name: str = "seeded") -> int:
    node = topology.load(project.settings, project.settings.env("production")).replica(name)
    assert node is not None, name
    return node.port


def open_replica(project: PitrProject, name: str = "seeded") -> psycopg.Connection[Any]:
    settings = project.settings
    return psycopg.connect(host="127.0.0.1", port=replica_port(project, name), user="cuisine", dbname="cuisine",
                           autocommit=True, passfile=str(settings.env_dir(settings.env("production")) / "pgpass"))


def count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM recipes").fetchone()
    assert row is not None
    return int(row[0])


def fingerprint(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    return table_fingerprints(conn, TABLES)


def caught_up(project: PitrProject) -> bool:
    settings = project.settings
    env = settings.env("production")
    return all(status.replay_bytes == 0 for status in lag.measure(settings, env).replicas)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys) -> Iterator[Lab]:
    if available(MAJOR) is None:
        binaries.install(MAJOR, cache_dir())
    project = make_pitr_project(tmp_path_factory.mktemp("seeded"), MAJOR, age_keys,
                                settings='log_replication_commands = "on"\n')
    # A short lag bound: the routing check pauses the replica's replay and waits for it to count as behind.
    project.config.write_text(project.config.read_text().replace(
        "protected = true\n", f"protected = true\nreplica_max_lag_seconds = {BOUND_SECONDS}\n", 1))
    try:
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        with project.connect() as conn:
            conn.execute("CREATE TABLE kitchens (id int PRIMARY KEY, name text NOT NULL)")
            conn.execute("CREATE TABLE recipes (id serial PRIMARY KEY, kitchen_id int REFERENCES kitchens, "
                         "title text NOT NULL)")
            conn.execute("INSERT INTO kitchens SELECT g, 'kitchen ' || g FROM generate_series(1, 40) g")
            conn.execute("INSERT INTO recipes (kitchen_id, title) SELECT 1 + g % 40, 'recipe ' || g "
                         "FROM generate_series(1, 3000) g")
        before = served(project)
        backup = project.make("db-backup", "env=production", "type=full")
        assert backup.returncode == 0, backup.stderr
        name = json.loads(project.ok("backup", "list", "--env", "production", "--json").stdout)[-1]["name"]
        after = served(project)
        # Written after the backup and archived: the seeded replica can only have these from the archive.
        with project.connect() as conn:
            conn.execute("INSERT INTO recipes (kitchen_id, title) SELECT 2, 'after the backup ' || g "
                         "FROM generate_series(1, 700) g")
        project.wait_archived(project.switch())
        seeded = project.make("db-create-replica", "env=production", "name=seeded", "from=backup")
        yield Lab(project, name, before, after, seeded, 700)
    finally:
        project.destroy()
        settings = project.settings
        env = settings.env("production")
        from cuisine_db.postgres.local import node_cluster

        for node in topology.load(settings, env).replicas:
            node_cluster(settings, env, topology.home_of(settings, env, node), node.port).destroy()


def test_a_replica_seeded_from_the_newest_backup_catches_up_from_the_archive_and_streams(lab: Lab) -> None:
    project = lab.project
    settings = project.settings
    env = settings.env("production")
    assert lab.seeded.returncode == 0, lab.seeded.stderr
    assert "replica seeded streams" in lab.seeded.stdout and f"seeded from {lab.backup}" in lab.seeded.stdout
    # The count moves when the primary serves a base backup (the fixture's type=full); seeding served none.
    assert lab.served == lab.served_before + 1
    assert served(project) == lab.served
    home = settings.env_dir(env) / "replicas" / "seeded"
    replica_log = log_text(home / "data")
    assert "from archive" in replica_log and "restored log file" in replica_log
    assert "started streaming WAL from primary" in replica_log
    # Rows written after the backup (archived) are there; rows written now arrive by streaming.
    with project.connect() as conn:
        conn.execute("INSERT INTO recipes (kitchen_id, title) SELECT 3, 'streamed ' || g FROM generate_series(1, 50) g")
        wanted = count(conn)
    with open_replica(project) as replica:
        wait_for(lambda: count(replica) == wanted, "the streamed rows on the seeded replica")
        assert replica.execute("SELECT count(*) FROM recipes WHERE title LIKE 'after the backup %'").fetchone() == (
            lab.after_backup,)
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        # Streaming now: the archive is no longer its way in, and the key it decrypted the archive with is gone.
        assert replica.execute("SELECT current_setting('restore_command')").fetchone() == ("",)
    assert not (home / "run" / "recovery-identity").exists()
    result = project.cli("replica", "list", "--env", "production", "--json")
    assert result.returncode == 0, result.stdout
    status = next(r for r in json.loads(result.stdout)["report"]["replicas"] if r["name"] == "seeded")
    assert status["receiver"] == "streaming" and status["streaming"]["state"] == "streaming"
    assert status["slot"]["name"] == "cuisine_seeded" and status["slot"]["active"]
    node = topology.load(settings, env).replica("seeded")
    assert node is not None and node.note == f"seeded from {lab.backup}"
    journal = [entry for entry in project.journal() if entry["command"] == "create-replica"]
    assert journal[-1]["outcome"] == "ok" and journal[-1]["details"]["seeded_from"] == lab.backup
    assert served(project) == lab.served


def test_seeding_refuses_without_a_backup_without_archiving_and_from_another_cluster(lab: Lab) -> None:
    project = lab.project
    project.ok("cluster", "up", "--env", "development")
    state = topology.path(project.settings, project.settings.env("development"))
    cases: list[tuple[list[str], int, str]] = [
        (["--env", "development", "--name", "spare", "--from", "backup"], 2, "no physical backup"),
        (["--env", "production", "--name", "spare", "--from", "elsewhere"], 2, "from=elsewhere"),
        (["--env", "production", "--name", "spare", "--from", "primary", "--backup", "latest"], 2, "contradict"),
        (["--env", "production", "--name", "spare", "--backup", "not-a-name"], 2, "bad backup name"),
    ]
    for args, code, words in cases:
        result = project.cli("replica", "create", *args)
        assert result.returncode == code, (args, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    # A backup of development, which does not archive: its own replica is refused for that, and production
    # refuses it as a backup of another cluster.
    project.ok("backup", "create", "--env", "development", "--type", "full")
    other = json.loads(project.ok("backup", "list", "--env", "development", "--json").stdout)[-1]["name"]
    result = project.cli("replica", "create", "--env", "development", "--name", "spare", "--from", "backup")
    assert result.returncode == 4 and "does not archive" in result.stderr, result.stderr
    result = project.cli("replica", "create", "--env", "production", "--name", "spare", "--backup", other)
    assert result.returncode == 4 and "another cluster" in result.stderr, result.stderr
    assert not state.exists() or "spare" not in state.read_text()
    production = project.settings.env("production")
    assert topology.load(project.settings, production).replica("spare") is None
    assert not (project.settings.env_dir(production) / "replicas" / "spare").exists()
    with project.connect() as conn:
        assert conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'cuisine_spare'").fetchone() is None
    assert served(project) == lab.served


def test_a_full_backup_from_the_replica_verifies_and_restores_to_the_primarys_data(lab: Lab) -> None:
    project = lab.project
    assert lab.seeded.returncode == 0, lab.seeded.stderr
    with project.connect() as conn:
        conn.execute("UPDATE recipes SET title = title || ' (edited)' WHERE id % 9 = 0")
    wait_for(lambda: caught_up(project), "the replica to replay the edit")
    base = served(project)
    taken = project.make("db-backup", "env=production", "type=full", "from=replica")
    assert taken.returncode == 0, taken.stderr
    assert "reading from replica seeded" in taken.stderr and "from the replica seeded" in taken.stdout
    name = taken.stdout.split(":")[0].strip()
    assert served(project) == base  # the replica served it, not the primary
    assert "command: BASE_BACKUP" in log_text(project.settings.env_dir(project.settings.env("production"))
                                              / "replicas" / "seeded" / "data")
    shown = json.loads(project.ok("backup", "show", name, "--env", "production", "--json").stdout)["manifest"]
    with project.connect() as conn:
        system = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
        timeline = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()
    assert shown["dump"]["source"] == "replica seeded" and shown["type"] == "full"
    assert system is not None and shown["system_identifier"] == system[0]
    assert timeline is not None and shown["timeline"] == timeline[0]
    assert shown["start_lsn"] and shown["stop_lsn"] and shown["dump"]["stop_wal"]
    listed = json.loads(project.ok("backup", "list", "--env", "production", "--json").stdout)
    assert {entry["name"]: entry["source"] for entry in listed}[name] == "replica seeded"
    assert {entry["name"]: entry["source"] for entry in listed}[lab.backup] == "primary"
    verified = project.make("db-verify-backup", "env=production", f"backup={name}")
    assert verified.returncode == 0, verified.stderr
    # Written after the backup, archived: db-apply-logs brings them onto the restored copy.
    with project.connect() as conn:
        conn.execute("INSERT INTO recipes (kitchen_id, title) SELECT 4, 'after the replica backup ' || g "
                     "FROM generate_series(1, 300) g")
        conn.execute("DELETE FROM recipes WHERE id % 13 = 0")
        live = fingerprint(conn)
    project.wait_archived(project.switch())
    project.ok("cluster", "up", "--env", "development")
    restored = project.cli("restore", "database", "--env", "development", "--backup", name, "--no-open")
    assert restored.returncode == 0, restored.stderr
    applied = project.make("db-apply-logs", "env=development")
    assert applied.returncode == 0, applied.stderr
    with project.connect("development") as conn:
        assert fingerprint(conn) == live
    # development runs production's cluster now: its own older backup (of the cluster the restore replaced) is no
    # seed for it, and backup=latest says so rather than picking it.
    if any(entry["type"] == "full" for entry in json.loads(project.ok("backup", "list", "--env", "development",
                                                                      "--json").stdout)):
        stale = project.cli("replica", "create", "--env", "development", "--name", "spare", "--from", "backup")
        assert stale.returncode == 4 and "every physical backup of 'development' is of another cluster" in \
            stale.stderr, stale.stderr
    # Routing as for every read from a replica: a replica behind the bound is passed over, with a warning, and the
    # backup is the primary's (which the primary's log shows).
    with open_replica(project) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            settings = project.settings
            env = settings.env("production")
            with project.connect() as conn:
                conn.execute("CREATE TABLE while_paused (id int)")
            wait_for(lambda: all(lag.unfit(s, env) for s in lag.measure(settings, env).replicas),
                     "the paused replica to fall behind the bound")
            before = served(project)
            fallback = project.cli("backup", "create", "--env", "production", "--type", "full", "--replica", "any",
                                   "--json")
            assert fallback.returncode == 0, fallback.stderr
            assert "warning:" in fallback.stderr and "reading from the primary instead" in fallback.stderr
            assert json.loads(fallback.stdout)["source"] == "primary"
            assert served(project) == before + 1
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
    refused = project.cli("backup", "create", "--env", "production", "--type", "incremental", "--from", "replica")
    assert refused.returncode == 2 and "not offered" in refused.stderr, refused.stderr

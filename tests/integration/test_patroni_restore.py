"""Restores on a Patroni environment, against real Patroni (PyPI) and etcd (Debian's etcd-server): one three-member
cluster per PostgreSQL version (`make cluster-up env=ha`, WAL archived), 18 then 14. The tests build on each other
in file order (serial): db-restore-tables on the leader, then the runbook's Complete Database Failure through make —
maintenance mode, db-restore backup=latest (Patroni paused, every member stopped, the backup laid down), db-apply-logs
to a point before the disaster (the cluster re-bootstrapped from the backup through Patroni's custom bootstrap,
the other members re-created from the repository with the toolkit's create_replica_method, the pause gone, archiving
on the new timeline), maintenance mode off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_support import run_cli, run_make
from patroni_support import ENV, base_backups, ha_config, healthy, patroni_log, wait_for

from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.postgres import connect, patroni, patroni_embedded, patroni_layout

pytestmark = [pytest.mark.slow, pytest.mark.serial]



@dataclass
class Ha:
    config: Path
    major: int

    @property
    def settings(self) -> Settings:
        return load_settings({"CUISINE_DB_CONFIG": str(self.config)})

    @property
    def env(self) -> Environment:
        return self.settings.env(ENV)

    def cli(self, *args: str) -> Any:
        return run_cli(self.config, *args, cwd=self.config.parent)

    def make(self, *args: str) -> Any:
        return run_make(self.config, *args)

    def view(self) -> patroni.ClusterView:
        return patroni.cluster(self.settings, self.env)

    def member(self, name: str) -> psycopg.Connection[Any]:
        layout = patroni_layout.load_layout(self.settings, self.env)
        assert layout is not None
        port = next(m.port for m in layout.members if m.name == name)
        return psycopg.connect(host="127.0.0.1", port=port, user="cuisine", dbname="cuisine", autocommit=True,
                               passfile=str(self.settings.env_dir(self.env) / "pgpass"), connect_timeout=5)

    def leader(self) -> psycopg.Connection[Any]:
        return connect(self.settings, self.env, "test")


@pytest.fixture(scope="module", params=[18, 14], ids=["pg18", "pg14"])
def ha(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ha]:
    _, config, major = ha_config(request, tmp_path_factory, "ha-restore")
    made = Ha(config, major)
    try:
        up = made.make("cluster-up", f"env={ENV}")
        assert up.returncode == 0, up.stderr
        keys = made.cli("backup", "keygen")
        assert keys.returncode == 0, keys.stderr
        enabled = made.make("db-wal-enable", f"env={ENV}", "restart=1", "archive_timeout=5s")
        assert enabled.returncode == 0, enabled.stderr
        wait_for("every member restarted and streaming", lambda: healthy(made) and not any(
            m.pending_restart for m in made.view().members))
        yield made
    finally:
        made.cli("cluster", "destroy", "--env", ENV, "--yes")


def _rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query).fetchall()


def test_db_restore_tables_on_a_patroni_environment_restores_on_the_leader(ha: Ha) -> None:
    with ha.leader() as conn:
        conn.execute("CREATE TABLE menu (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO menu SELECT n, 'dish ' || n FROM generate_series(1, 50) n")
    backup = ha.make("db-backup", f"env={ENV}", "type=logical")
    assert backup.returncode == 0, backup.stderr
    with ha.leader() as conn:
        conn.execute("DELETE FROM menu WHERE id > 10")
        conn.execute("UPDATE menu SET name = 'gone'")
    restored = ha.make("db-restore-tables", f"env={ENV}", "backup=latest", "tables=menu")
    assert restored.returncode == 0, restored.stderr
    wanted = [(n, f"dish {n}") for n in range(1, 51)]
    with ha.leader() as conn:
        assert _rows(conn, "SELECT id, name FROM menu ORDER BY id") == wanted
    for member in ha.view().members:
        if member.is_leader:
            continue

        def has_rows(name: str = member.name) -> bool:
            with ha.member(name) as conn:
                return _rows(conn, "SELECT id, name FROM menu ORDER BY id") == wanted
        wait_for(f"{member.name} streams the restored rows", has_rows)


def _archived(ha: Ha, segment: str) -> bool:
    result = ha.cli("wal", "status", "--env", ENV, "--json")
    return str(json.loads(result.stdout).get("archive_end") or "") >= segment


def _journal(ha: Ha) -> list[dict[str, Any]]:
    path = ha.settings.env_dir(ha.env) / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_complete_database_failure_on_patroni_through_make(ha: Ha) -> None:
    with ha.leader() as conn:
        conn.execute("CREATE ROLE cuisine_app LOGIN")
        conn.execute("CREATE TABLE ticks (id bigint PRIMARY KEY, note text)")
        conn.execute("INSERT INTO ticks SELECT n, 'before the backup' FROM generate_series(1, 100) n")
    backup = ha.make("db-backup", f"env={ENV}", "type=full")
    assert backup.returncode == 0, backup.stderr
    with ha.leader() as conn:
        for first in range(101, 301, 10):  # committed after the backup, one transaction each
            conn.execute("INSERT INTO ticks SELECT n, 'after the backup' FROM generate_series(%s::int, %s::int) n",
                         [first, first + 9])
        moment = conn.execute("SELECT clock_timestamp()").fetchone()
        before = ha.view().leader
    assert moment is not None and before is not None and before.timeline is not None
    time.sleep(1.2)
    with ha.leader() as conn:  # the disaster, after the target: its commit is where recovery stops
        conn.execute("DROP TABLE ticks")
        segment = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        conn.execute("SELECT pg_switch_wal()")
    assert segment is not None
    wait_for("the segment with the DROP archived", lambda: _archived(ha, segment[0]), timeout=90)
    target = moment[0].astimezone().isoformat(sep=" ")

    enabled = ha.make("maintenance-mode", "enable", 'reason=Database restoration in progress')
    assert enabled.returncode == 0, enabled.stderr
    laid = ha.make("db-restore", f"env={ENV}", "backup=latest")
    assert laid.returncode == 0, laid.stderr
    assert "db-apply-logs" in laid.stdout + laid.stderr
    assert not any(p.running for p in patroni_embedded.processes(ha.settings, ha.env) if p.name != "etcd")
    for refused in (ha.make("cluster-up", f"env={ENV}"), ha.make("maintenance-mode", "disable")):
        assert refused.returncode == 2 and "exit 4 (refused" in refused.stderr, refused.stderr
        assert "laid down" in refused.stderr

    full = json.loads(ha.cli("backup", "show", "--env", ENV, "--json", "latest").stdout)["manifest"]["name"]
    since = time.time()
    applied = ha.make("db-apply-logs", f"env={ENV}", f"target={target}")
    assert applied.returncode == 0, applied.stderr
    wait_for("a leader and two streaming replicas after the restore", lambda: healthy(ha), timeout=300)
    view = ha.view()
    assert not view.paused
    assert view.leader is not None
    # The other members were re-created from the repository (the toolkit's create_replica_method installed the
    # same backup, the archive caught them up): the restored leader served no base backup.
    assert base_backups(ha.settings, ha.env, view.leader.name, since) == 0
    for member in view.members:
        if not member.is_leader:
            assert f"installed {full}" in patroni_log(ha.settings, ha.env, member.name), member.name
    log = patroni_layout.state_dir(ha.settings, ha.env) / "logs" / f"{view.leader.name}.log"
    assert "Running custom bootstrap script" in log.read_text(errors="replace")  # Patroni bootstrapped it
    assert view.leader is not None and (view.leader.timeline or 0) > before.timeline
    wanted = list(range(1, 301))
    with ha.leader() as conn:
        ids = [row[0] for row in _rows(conn, "SELECT id FROM ticks ORDER BY id")]
        assert ids == wanted  # every row committed before the target, none twice, none after
        limit = conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'cuisine_app'").fetchone()
        assert limit == (0,)  # maintenance mode still blocks the application on the restored leader
        conn.execute("INSERT INTO ticks VALUES (301, 'after the restore')")
        current = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        conn.execute("SELECT pg_switch_wal()")
    assert current is not None and int(current[0][:8], 16) == view.leader.timeline
    # Archiving goes on from the restored leader, on its new timeline, into the same archive.
    wait_for("the restored leader's new timeline archived", lambda: _archived(ha, current[0]), timeout=90)
    for member in view.members:
        if member.is_leader:
            continue

        def caught_up(name: str = member.name) -> bool:
            with ha.member(name) as conn:
                return [row[0] for row in _rows(conn, "SELECT id FROM ticks ORDER BY id")] == [*wanted, 301]
        wait_for(f"{member.name} rebuilt from the restored leader", caught_up)

    disabled = ha.make("maintenance-mode", "disable")
    assert disabled.returncode == 0, disabled.stderr
    with ha.leader() as conn:
        assert conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'cuisine_app'").fetchone() == (-1,)
    outcomes = {(line["command"], line["outcome"]) for line in _journal(ha)}
    assert {("restore", "ok"), ("apply-logs", "ok")} <= outcomes
    assert not any(Path(ha.settings.env_dir(ha.env)).glob("pre-restore-*"))


def test_db_restore_without_maintenance_mode_reopens_the_cluster_with_exactly_the_backups_data(ha: Ha) -> None:
    before = ha.view().leader
    assert before is not None and before.timeline is not None
    opened = ha.make("db-restore", f"env={ENV}", "backup=latest")
    assert opened.returncode == 0, opened.stderr
    assert "laid down" in opened.stdout
    wait_for("a leader and two streaming replicas after the restore", lambda: healthy(ha), timeout=180)
    view = ha.view()
    assert not view.paused
    assert view.leader is not None and (view.leader.timeline or 0) > before.timeline
    with ha.leader() as conn:  # the full backup of the drill: the 100 rows it held, nothing written after it
        assert [row[0] for row in _rows(conn, "SELECT id FROM ticks ORDER BY id")] == list(range(1, 101))
    again = ha.make("db-apply-logs", f"env={ENV}")
    assert again.returncode == 2 and "exit 4 (refused" in again.stderr, again.stderr
    assert "opened" in again.stderr

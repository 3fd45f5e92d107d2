"""db-upgrade on seeded Cuisine Code data: a local PostgreSQL 14 environment upgraded in place with pg_upgrade.

One module-scoped environment goes through the runs in order (copy and rollback, kills, link and finish), so the
pre-flight's full backup is taken once. 14 → 15 (Debian), swap and the link and swap kills each need an environment
of their own: they are in test_upgrade_methods.py, which make test spreads over its workers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from backup_fixtures import AgeKeys, make_keys
from upgrade_support import LocalProject, kill_at, make_local_project, need, unchanged

# The tests build on each other's work in file order (the pre-flight's backup, a passing rehearsal): make test runs
# the module whole in one worker, in file order (marker `serial`; make test runs --dist loadfile).
pytestmark = [pytest.mark.slow, pytest.mark.serial]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> AgeKeys:
    return make_keys(tmp_path_factory.mktemp("upgrade-keys"))


@pytest.fixture(scope="module")
def pg14(tmp_path_factory: pytest.TempPathFactory, keys: AgeKeys) -> Iterator[LocalProject]:
    need(14)
    need(18)
    project = make_local_project(tmp_path_factory.mktemp("upgrade14"), keys, 14)
    yield project
    project.cli("cluster", "down", "--env", "production")



@pytest.mark.parametrize(("args", "reason"), [
    (("--to", "13"), "older than production's PostgreSQL 14"),
    (("--to", "99"), "not a major version"),
    (("--to", "14"), "already runs PostgreSQL 14"),
    (("--to", "18", "--method", "teleport"), "not an upgrade method"),
    (("--to", "15", "--method", "swap"), "needs pg_upgrade 18"),
    (("--to", "18", "--method", ""), "not an upgrade method"),
    (("--to", ""), "--to"),
])
def test_hostile_input_is_refused_with_nothing_changed(pg14: LocalProject, args: tuple[str, ...],
                                                       reason: str) -> None:
    before = pg14.fingerprints()
    result = pg14.cli("upgrade", "--env", "production", *args, "--yes")
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr
    unchanged(pg14, before)


def test_protected_without_confirmation_is_refused_before_any_work(pg14: LocalProject) -> None:
    before = pg14.fingerprints()
    result = pg14.cli("upgrade", "--env", "production", "--to", "18")
    assert result.returncode == 4
    assert "needs confirmation" in result.stderr
    assert "pre-flight" not in result.stderr  # nothing ran: no snapshot, no backup
    unchanged(pg14, before)


def test_remote_environment_refuses_in_place_methods(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.far]\ndsn = "host=db.invalid user=cuisine dbname=cuisine"\n')
    project = LocalProject(tmp_path, config, "far")
    result = project.cli("upgrade", "--env", "far", "--to", "18", "--method", "link")
    assert result.returncode == 2
    assert "remote server" in result.stderr
    assert "pg_upgrade" in result.stderr  # the steps to take on the server instead


def test_clone_without_reflinks_is_a_no_go(pg14: LocalProject) -> None:
    before = pg14.fingerprints()
    result = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "clone", "--check", "--json")
    report = json.loads(result.stdout)
    check = next(row for row in report["preflight"]["rows"] if row["check"] == "pg_upgrade --check")
    if check["status"] == "go":
        pytest.skip("this file system clones files (reflinks): clone is a go here")
    assert result.returncode == 1
    assert "clon" in check["detail"].lower()
    unchanged(pg14, before)


def _limit(project: LocalProject, role: str) -> int:
    with project.connect() as conn:
        row = conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    assert row is not None
    return int(row[0])


def test_copy_upgrade_then_rollback_restores_the_old_cluster_exactly(pg14: LocalProject) -> None:
    with pg14.connect() as conn:  # an application role: maintenance mode blocks it during the upgrade
        conn.execute("CREATE ROLE cuisine_app LOGIN CONNECTION LIMIT 7")
    before = pg14.fingerprints()
    system = pg14.system_identifier()
    result = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "copy", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["preflight"]["take_backup"] is True  # the first run takes the verified full backup
    assert report["backup"]
    assert report["rehearsal"] == report["backup"]  # protected: rehearsed first, on the backup just taken
    assert report["can_roll_back"] is True
    assert pg14.major() == 18
    assert pg14.fingerprints() == before
    assert pg14.system_identifier() != system
    assert _limit(pg14, "cuisine_app") == 7  # maintenance mode is off again on the new cluster
    with pg14.connect() as conn:
        conn.execute("CREATE TABLE only_on_18 (id int)")
    back = pg14.cli("upgrade", "--env", "production", "--rollback", "--yes")
    assert back.returncode == 0, back.stderr
    assert pg14.system_identifier() == system
    assert _limit(pg14, "cuisine_app") == 7  # the old cluster stopped with it blocked: given back
    unchanged(pg14, before)
    with pg14.connect() as conn:
        assert conn.execute("SELECT to_regclass('only_on_18')").fetchone() == (None,)


def test_rehearsal_predicts_the_downtime_and_leaves_env_alone(pg14: LocalProject) -> None:
    before = pg14.fingerprints()
    result = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "link", "--rehearse", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["go"] is True
    assert report["predicted_downtime_seconds"] > 0
    assert report["row_count_differences"] == [] and report["migrations_missing"] == []
    assert report["amcheck_problems"] == []
    unchanged(pg14, before)
    assert not (pg14.root / ".cuisine" / "rehearse-production").exists()
    listed = json.loads(pg14.cli("backup", "list", "--env", "production", "--json").stdout)
    rehearsed = next(b for b in listed if b["name"] == report["backup"])
    assert rehearsed["test_restore"]["details"]["upgrade_rehearsal"] is True
    assert rehearsed["test_restore"]["ok"] is True
    unrehearsed = next(b["name"] for b in listed if not b["test_restore"])
    refused = pg14.cli("upgrade", "--env", "production", "--to", "18", "--rehearsed", unrehearsed, "--yes")
    assert refused.returncode == 4, refused.stderr
    assert "no passing rehearsal" in refused.stderr
    unchanged(pg14, before)


def _rehearsed(project: LocalProject) -> str:
    """The backup whose passing upgrade rehearsal stands for the protected environment's runs."""
    listed = json.loads(project.cli("backup", "list", "--env", "production", "--json").stdout)
    return next(str(b["name"]) for b in listed if b["test_restore"] and b["test_restore"]["ok"]
                and b["test_restore"]["details"].get("upgrade_rehearsal"))



@pytest.mark.parametrize("phase", ["preflight", "stopped", "upgrading", "upgraded", "switched", "started"])
def test_kill_in_every_phase_leaves_the_old_cluster_or_the_new_one(pg14: LocalProject, phase: str) -> None:
    """kill -9 at each phase of a copy upgrade; the re-run either rolls back and upgrades again, or finishes."""
    before = pg14.fingerprints()
    rehearsed = _rehearsed(pg14)
    kill_at(pg14, phase, "--method", "copy", "--rehearsed", rehearsed)
    again = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "copy", "--rehearsed", rehearsed,
                     "--yes")
    assert again.returncode == 0, again.stderr
    assert pg14.major() == 18
    assert pg14.fingerprints() == before
    back = pg14.cli("upgrade", "--env", "production", "--rollback", "--yes")
    assert back.returncode == 0, back.stderr
    unchanged(pg14, before)


def test_link_upgrade_and_the_commands_after_it(pg14: LocalProject) -> None:
    before = pg14.fingerprints()
    with pg14.connect() as conn:
        applied = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    listed = pg14.cli("backup", "list", "--env", "production", "--json")
    old_full = next(b["name"] for b in json.loads(listed.stdout) if b["type"] == "full")
    eol = pg14.cli("security", "check", "--env", "production", "--json")
    assert "version-support" in eol.stdout  # PostgreSQL 14 is past its end of life
    result = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "link", "--rehearsed",
                      _rehearsed(pg14), "--yes", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["can_roll_back"] is False
    assert report["backup"] is None  # the copy run's backup is recent, verified, and of this very cluster
    assert report["backup_after"]  # the new system identifier's first full backup
    assert pg14.major() == 18
    assert pg14.fingerprints() == before
    with pg14.connect() as conn:
        assert conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall() == applied
    assert (pg14.home / "postgres_major").read_text().strip() == "18"
    refused = pg14.cli("upgrade", "--env", "production", "--rollback", "--yes")
    assert refused.returncode == 4
    assert "point of no return" in refused.stderr
    assert pg14.cli("migrate", "status", "--env", "production").returncode == 0
    check = pg14.cli("security", "check", "--env", "production", "--json")
    assert "version-support" not in check.stdout
    for args in (("backup", "create", "--env", "production", "--type", "full"),
                 ("backup", "create", "--env", "production", "--type", "logical"),
                 ("monitor", "--env", "production"), ("analyze", "--env", "production")):
        done = pg14.cli(*args)
        assert done.returncode in (0, 1), (args, done.stderr)  # 1: the monitor's or analysis's findings
        assert "Traceback" not in done.stderr
    # db-restore on the new major: its first full backup, in place of the whole cluster; a backup from before the
    # upgrade is refused there (another major), and names the way it does restore.
    assert pg14.cli("maintenance", "enable", "--env", "production", "--reason", "restore").returncode == 0
    wrong = pg14.cli("restore", "database", "--env", "production", "--backup", old_full, "--yes")
    assert wrong.returncode == 2 and "PostgreSQL 14" in wrong.stderr, wrong.stderr
    again = pg14.cli("restore", "database", "--env", "production", "--backup", report["backup_after"], "--open",
                     "--yes")
    assert again.returncode == 0, again.stderr
    assert pg14.cli("maintenance", "disable", "--env", "production").returncode == 0
    assert pg14.major() == 18
    assert pg14.fingerprints() == before
    # A backup from before the upgrade still restores, into a scratch cluster of its own major.
    restored = pg14.cli("restore", "test", "--env", "production", "--backup", old_full, "--json")
    assert restored.returncode == 0, restored.stderr
    finished = pg14.cli("upgrade", "--env", "production", "--finish", "--yes")
    assert finished.returncode == 0, finished.stderr
    assert not (pg14.home / "upgrade").exists()
    assert pg14.major() == 18

"""method=logical on an environment that archives WAL, PostgreSQL 14 -> 18: the new cluster archives into an area of
its own from its start on the environment's port and gets its first full backup at once; the old cluster's last
segment is in the old area and nothing reaches that area after the cutover; a rollback archives into the old area
again and takes a new full backup (the old cluster's WAL while it followed the new one was not archived).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backup_fixtures import AgeKeys
from conftest import available
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.upgrade.inplace import _stop_any

pytestmark = [pytest.mark.slow, pytest.mark.serial]


def _system(project: PitrProject) -> str:
    with project.connect() as conn:
        row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    assert row is not None
    return str(row[0])


def _show(conn: psycopg.Connection[Any], name: str) -> str:
    row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    assert row is not None
    return str(row[0])


def _area(project: PitrProject, area: str) -> Path:
    return Path(project.repository.removeprefix("file://")) / "wal" / area


def _keys(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def _systems(folder: Path) -> set[str]:
    """The system identifiers the signed records of one archive area name."""
    bodies = [json.loads(path.read_bytes().split(b"\n", 1)[0]) for path in folder.rglob("*-claim-*")]
    return {str(body["system_identifier"]) for body in bodies if body.get("system_identifier")}


def _fulls(project: PitrProject) -> list[str]:
    listed = json.loads(project.ok("backup", "list", "--env", "production", "--json").stdout)
    return [str(entry["name"]) for entry in listed if entry["type"] == "full"]


@pytest.fixture
def archiving(tmp_path: Path, age_keys: AgeKeys) -> Iterator[PitrProject]:
    if available(14) is None or available(18) is None:
        pytest.skip("PostgreSQL 14 and 18 are both needed")
    project = make_pitr_project(tmp_path / "logical-archive", 14, age_keys)
    project.config.write_text(project.config.read_text().replace("protected = true", "protected = false", 1))
    try:
        with project.connect() as conn:
            conn.execute("CREATE TABLE marks (id bigserial PRIMARY KEY, note text NOT NULL)")
            conn.execute("INSERT INTO marks (note) SELECT 'on 14, ' || g FROM generate_series(1, 500) AS g")
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        project.wait_archived(project.switch())
        yield project
    finally:
        for leftover in sorted((project.root / ".cuisine" / "production").glob("upgrade/pg*/data")):
            _stop_any(int(leftover.parent.name.removeprefix("pg")), leftover, project.settings)
        project.destroy()


def test_logical_upgrade_carries_wal_archiving_into_an_area_of_its_own(archiving: PitrProject) -> None:
    project = archiving
    home = project.root / ".cuisine" / "production"
    old_system = _system(project)
    fulls_before = _fulls(project)
    result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--yes", "--json",
                         timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    archive_row = next(row for row in report["preflight"]["rows"] if row["check"] == "WAL archive")
    assert archive_row["status"] == "go", archive_row
    new_system = _system(project)
    assert new_system != old_system
    record = json.loads((home / "wal-areas.json").read_text())
    assert [(a["system_identifier"], a["area"], a["major"]) for a in record["areas"]] == [
        (old_system, "production", 14), (new_system, f"production+{new_system}", 18)]
    assert report["backup_after"] and report["backup_after"] in _fulls(project)
    assert report["backup_after"] not in fulls_before
    old_area = _keys(_area(project, "production"))
    assert _systems(_area(project, "production")) == {old_system}
    with project.connect() as conn:
        assert int(_show(conn, "server_version_num")) // 10000 == 18
        assert _show(conn, "archive_mode") == "on"
        conn.execute("INSERT INTO marks (note) VALUES ('on 18')")
    project.wait_archived(project.switch())
    new_area = _area(project, f"production+{new_system}")
    assert _systems(new_area) == {new_system}
    state = json.loads((home / "upgrade" / "logical.json").read_text())
    with psycopg.connect(host="127.0.0.1", port=state["back_port"], user="cuisine", dbname="cuisine",
                         passfile=str(home / "pgpass"), autocommit=True) as old:
        assert int(_show(old, "server_version_num")) // 10000 == 14
        assert _show(old, "archive_mode") == "off"  # it follows the new cluster: its WAL is not the environment's
    assert _keys(_area(project, "production")) == old_area  # nothing reached the old area after the cutover
    status = project.cli("wal", "status", "--env", "production", "--json")
    assert status.returncode == 0, status.stdout + status.stderr

    back = project.cli("upgrade", "--env", "production", "--rollback", "--yes", timeout=1200)
    assert back.returncode == 0, back.stdout + back.stderr
    assert _system(project) == old_system
    assert not (home / "wal-areas.json").exists()  # the first area is the current one again
    assert len(_fulls(project)) == len(fulls_before) + 2  # the new cluster's first, the old one's after the rollback
    with project.connect() as conn:
        assert int(_show(conn, "server_version_num")) // 10000 == 14
        assert _show(conn, "archive_mode") == "on"
        assert conn.execute("SELECT count(*) FROM marks WHERE note = 'on 18'").fetchone() == (1,)
    closed = project.switch()
    project.wait_archived(closed)
    assert any(closed in key for key in _keys(_area(project, "production")) - old_area)
    assert _systems(_area(project, "production")) == {old_system}
    assert _systems(new_area) == {new_system}
    assert not (home / "upgrade").exists()

"""Damaged state files are reported, naming the file, never read as absent: maintenance mode, the last physical
restore, incidents, the pgpass the tool writes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cuisine_db import records
from cuisine_db.backup import restore_state
from cuisine_db.config import Settings, load_settings
from cuisine_db.ops import incidents, maintenance_state
from cuisine_db.postgres import pgpass

CLI = [sys.executable, "-m", "cuisine_db"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cuisine-db.toml"
    path.write_text('default_env = "staging"\n[environments.staging]\ndsn = "host=127.0.0.1 port=1 dbname=x"\n')
    return path


@pytest.fixture
def settings(config: Path) -> Settings:
    return load_settings({"CUISINE_DB_CONFIG": str(config)})


def test_maintenance_state_round_trips_and_a_damaged_one_is_refused_naming_it(settings: Settings) -> None:
    env = settings.env("staging")
    assert maintenance_state.state(settings, env) is None
    recorded = maintenance_state.MaintenanceState("staging", "upgrade", "ops@db1",
                                                  datetime(2025, 3, 15, 1, 0, tzinfo=UTC), {"app": 40})
    path = maintenance_state.state_path(settings, env)
    maintenance_state.save(path, recorded)
    assert maintenance_state.state(settings, env) == recorded
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    body = json.loads(path.read_text())
    body["roles"] = {"app": "forty"}
    path.write_text(json.dumps(body))
    with pytest.raises(records.DamagedRecord) as caught:
        maintenance_state.state(settings, env)
    assert str(path) in caught.value.message and "roles.app" in caught.value.message
    assert caught.value.exit_code == 1


def test_a_damaged_restore_state_is_refused_naming_it(settings: Settings) -> None:
    env = settings.env("staging")
    now = datetime(2025, 3, 15, 1, 0, tzinfo=UTC)
    state = restore_state.RestoreState("staging", restore_state.LAID_DOWN, "staging-full-20250315T010000Z", [],
                                       "staging", "7", 1, "0/3000100", None, 16 << 20, now, now, 1.5, None, False)
    restore_state.save(settings, env, state)
    assert restore_state.pending(settings, env) == state
    path = restore_state.path(settings, env)
    path.write_text(path.read_text()[:40])  # cut short, as by a full disk before atomic writes
    with pytest.raises(records.DamagedRecord) as caught:
        restore_state.pending(settings, env)
    assert str(path) in caught.value.message and caught.value.exit_code == 1
    path.write_text(json.dumps({"env": "staging", "state": "laid-down"}))
    with pytest.raises(records.DamagedRecord, match="Field required"):
        restore_state.load(settings, env)


def test_a_damaged_incident_is_listed_as_damaged_naming_it(config: Path, settings: Settings) -> None:
    good = incidents.open_incident(settings, 2, "Replica lag")
    bad = incidents.open_incident(settings, 1, "Database failure")
    damaged = settings.state_dir / "incidents" / f"{bad.id}.json"
    damaged.write_text(damaged.read_text().replace('"severity": 1', '"severity": "high"'))
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
    environ.pop("CUISINE_DB_ENV", None)
    listed = subprocess.run([*CLI, "incident", "list"], env=environ, capture_output=True, text=True, check=False,
                            timeout=120, cwd=config.parent)
    assert listed.returncode == 1, listed.stderr
    assert good.id in listed.stdout and "damaged" in listed.stdout
    assert str(damaged) in "".join(listed.stderr.split())  # the terminal may wrap it
    as_json = subprocess.run([*CLI, "incident", "list", "--json"], env=environ, capture_output=True, text=True,
                             check=False, timeout=120, cwd=config.parent)
    assert as_json.returncode == 1
    rows = json.loads(as_json.stdout)
    assert [row["id"] for row in rows if "id" in row] == [good.id]
    assert [row["file"] for row in rows if row.get("status") == "damaged"] == [str(damaged)]
    shown = subprocess.run([*CLI, "incident", "show", bad.id], env=environ, capture_output=True, text=True,
                           check=False, timeout=120, cwd=config.parent)
    assert shown.returncode == 1 and "damaged" in shown.stderr and bad.id in shown.stderr
    with pytest.raises(records.DamagedRecord):
        incidents.all_incidents(settings)
    assert incidents.open_ids(settings, "staging") == [good.id]  # linking never stops a command


def test_pgpass_put_keeps_other_users_and_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "pgpass"
    pgpass.put(path, "cuisine_monitor", "a:b")
    pgpass.put(path, "cuisine_backup", "secret")
    pgpass.put(path, "cuisine_monitor", "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pgpass.lookup(path, "h", "1", "d", "cuisine_monitor") == "new"
    assert pgpass.lookup(path, "h", "1", "d", "cuisine_backup") == "secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pgpass"]


def test_the_upgrade_state_round_trips_and_a_damaged_one_is_refused_naming_it(settings: Settings) -> None:
    from cuisine_db.upgrade import state as upgrade_state

    env = settings.env("staging")
    assert upgrade_state.load(settings, env) is None
    recorded = upgrade_state.UpgradeState("staging", 14, 18, "copy", upgrade_state.PHASES[0], False, None,
                                          "2026-12-05T12:00:00+00:00", replicas=(("r1", 5433),))
    upgrade_state.save(settings, env, recorded)
    assert upgrade_state.load(settings, env) == recorded
    path = upgrade_state.path(settings, env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    body = json.loads(path.read_text())
    body["target"] = "eighteen"
    path.write_text(json.dumps(body))
    with pytest.raises(records.DamagedRecord) as caught:
        upgrade_state.load(settings, env)
    assert str(path) in caught.value.message and "target" in caught.value.message


def test_a_laid_down_restore_refuses_starting_the_cluster_naming_both_ways_on(settings: Settings) -> None:
    from cuisine_db.cluster import on_demand
    from cuisine_db.errors import RefusedError

    env = settings.env("staging")
    now = datetime(2025, 3, 15, 1, 0, tzinfo=UTC)
    restore_state.save(settings, env, restore_state.RestoreState(
        "staging", restore_state.LAID_DOWN, "staging-full-20250315T010000Z", [], "staging", "7", 1, "0/3000100", None,
        16 << 20, now, now, 1.5, None, False))
    with pytest.raises(RefusedError) as caught:
        on_demand.patroni_up(settings, env)
    assert caught.value.message.endswith("staging-full-20250315T010000Z, laid down by db-restore and not opened yet")
    assert caught.value.hint == ("make db-apply-logs env=staging replays the archive onto it, or cuisine-db restore "
                                 "open --env staging opens it as the backup left it")

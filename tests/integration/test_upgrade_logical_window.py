"""method=logical's write window, 14 -> 18: its steps are timed and reported, the table comparison runs after writes
are back, and a run killed after the switch but before the old cluster followed (phase `switched`) rolls back with
the writes made on the new cluster. The tests build on each other in file order, on test_upgrade_logical.py's
environment (a tickets table an application role fills, kitchen_notes without a key: --replica-identity-full).
"""

from __future__ import annotations

import json

import psycopg
import pytest
from test_upgrade_logical import Writer, _journal, _port, _rows
from test_upgrade_logical import project as project  # the same environment, made again for this module
from upgrade_support import LocalProject

pytestmark = [pytest.mark.slow, pytest.mark.serial]

BACK = "cuisine_db_upgrade_back"


def test_the_window_holds_only_what_needs_writes_stopped(project: LocalProject) -> None:
    writer = Writer(_port(project), first=1)
    writer.start()
    try:
        result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical",
                             "--replica-identity-full", "--yes", "--json", timeout=1200)
    finally:
        writer.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    phases = report["phases"]
    names = [phase["name"] for phase in phases]
    blocked = [phase for phase in phases if phase["writes_blocked"]]
    assert [phase["name"] for phase in blocked] == [
        "maintenance mode on", "last LSN applied, sequences", "forward replication removed",
        "switch (both stopped, folders exchanged, new started)", "reverse slot, snapshot for the comparison",
        "maintenance mode off"]
    # The timed steps inside the window account for the downtime reported, and no more.
    assert sum(phase["seconds"] for phase in blocked) <= report["downtime_seconds"] + 0.05
    assert names.index("close in (lag, checkpoints, sequences)") < names.index("maintenance mode on")
    assert names.index("maintenance mode off") < names.index("tables compared")
    assert len(report["tables"]) >= 1 and all(table["same"] for table in report["tables"])
    rows = _rows(project)
    assert len(rows) == len(set(rows)), "a row was applied twice"
    assert not set(writer.committed) - set(rows), "a committed row is missing after the cutover"
    journal = _journal(project)
    commands = [entry["command"] for entry in journal]
    assert commands.index("upgrade logical: switch") < commands.index("upgrade logical: compare")
    upgrade = [entry for entry in journal if entry["command"] == "upgrade"][-1]
    assert set(upgrade["details"]["phases"]) == set(names)


def test_a_run_killed_before_the_old_cluster_followed_rolls_back_with_the_new_writes(project: LocalProject) -> None:
    """Phase `switched`: the new cluster serves and holds the reverse slot, the old cluster's subscription is not
    running yet (made disabled, the run killed before it was enabled). --rollback starts it and brings back what
    was written on the new cluster meanwhile, instead of removing the new cluster as before a switch."""
    state_path = project.home / "upgrade" / "logical.json"
    state = json.loads(state_path.read_text())
    assert state["phase"] == "done"
    with psycopg.connect(host="127.0.0.1", port=state["back_port"], user="cuisine", dbname="cuisine",
                         passfile=str(project.home / "pgpass"), autocommit=True) as old:
        old.execute(f"ALTER SUBSCRIPTION {BACK} DISABLE")
    state_path.write_text(json.dumps({**state, "phase": "switched"}))
    top = max(_rows(project))
    with project.connect() as conn:
        conn.execute("INSERT INTO tickets (n) SELECT g FROM generate_series(%s::int, %s::int) AS g",
                     (top + 1, top + 100))
    result = project.cli("upgrade", "--env", "production", "--rollback", "--yes", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.major() == 14
    rows = _rows(project)
    assert len(rows) == len(set(rows))
    assert set(range(top + 1, top + 101)) <= set(rows), "rows written on PostgreSQL 18 were lost by the rollback"
    assert not (project.home / "upgrade").exists()

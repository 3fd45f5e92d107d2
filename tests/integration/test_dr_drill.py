"""make dr-drill env=staging: the Complete Database Failure procedure rehearsed on a scratch copy of staging, with
the measured recovery time and data-loss window; staging itself untouched, nothing of the scratch copy left but
its journal (the drill incident's timeline)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from backup_fixtures import AgeKeys
from conftest import Server
from pitr_fixtures import PitrProject

from cuisine_db.postgres.ports import free_port


def _staging(root: Path, major: int, keys: AgeKeys) -> PitrProject:
    root.mkdir(parents=True, exist_ok=True)
    repository = (root / "repository").as_uri()
    config = root / "cuisine-db.toml"
    config.write_text(
        f'default_env = "staging"\n[environments.staging]\nport = {free_port()}\npostgres_version = {major}\n'
        "[environments.staging.server_settings]\nfsync = false\n"
        f'[environments.staging.backup]\nrepository = "{repository}"\nrecipients = ["{keys.recipient}"]\n'
        f'identity_file = "{keys.identity_file}"\n')
    return PitrProject(root, config, major, keys, repository)


def _journal(project: PitrProject, env: str) -> list[dict[str, Any]]:
    path = project.root / ".cuisine" / env / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# One version: the procedure itself runs on every version in test_pitr_drill.py; this is the rehearsal around it.
@pytest.mark.parametrize("server", [18], indirect=True)
def test_dr_drill_rehearses_on_a_scratch_copy_and_measures(server: Server, tmp_path: Path, age_keys: AgeKeys) -> None:
    project = _staging(tmp_path / "drill", server.major, age_keys)
    try:
        project.ok("wal", "enable", "--env", "staging", "--restart", "--yes")
        with project.connect("staging") as conn:
            conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
            conn.execute("INSERT INTO orders (id) SELECT generate_series(1, 100)")
        no_full = project.make("dr-drill", "env=staging")
        assert no_full.returncode != 0 and "no complete" in no_full.stderr, no_full.stderr
        backup = project.make("db-backup", "env=staging", "type=full")
        assert backup.returncode == 0, backup.stderr
        with project.connect("staging") as conn:
            conn.execute("INSERT INTO orders (id) SELECT generate_series(101, 150)")  # after the backup
            row = conn.execute("SELECT max(at) FROM orders").fetchone()
        assert row is not None
        last_archived_commit: datetime = row[0]
        with project.connect("staging") as conn:
            segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert segment is not None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # until the archiver has taken the segment closed
                archived = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
                if archived and archived[0] and archived[0][:24] >= segment[0]:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"{segment[0]} was not archived")

        drill = project.make("dr-drill", "env=staging")
        assert drill.returncode == 0, drill.stdout + drill.stderr
        finished = datetime.now(UTC)
        text = drill.stdout
        commands = re.findall(r"^\s+\S+\s+make (\S+)", text, re.M)
        assert commands == ["incident-create", "maintenance-mode", "db-restore", "db-apply-logs", "db-verify-integrity",
                            "maintenance-mode"], text
        recovery = re.search(r"^recovery time: .* \((\d+\.\d)s, incident opened to maintenance mode off\)$", text, re.M)
        loss = re.search(r"^data-loss window: .* \((\d+\.\d)s: the failure at .* UTC, WAL (\S+)\)$", text, re.M)
        assert recovery is not None and loss is not None, text
        # The last archived commit came back: the window is no wider than from it to the end of the drill.
        assert 0 <= float(loss.group(1)) <= (finished - last_archived_commit).total_seconds() + 1

        # The drill's steps are journaled on the scratch copy, linked to its incident, which is resolved and copied.
        lines = _journal(project, "drill-staging")
        assert [line["command"] for line in lines] == [
            "incident create", "maintenance enable", "restore", "apply-logs", "db-verify-integrity",
            "maintenance disable", "incident resolve"]
        assert all(line["outcome"] == "ok" for line in lines), lines
        ids = {tuple(line["incidents"]) for line in lines}
        assert len(ids) == 1
        (incident,) = ids.pop()
        applied = next(line for line in lines if line["command"] == "apply-logs")
        assert applied["details"]["reached_lsn"] == loss.group(2)
        assert datetime.fromisoformat(applied["details"]["reached_time"]) >= last_archived_commit
        report = project.ok("incident", "report", incident).stdout
        assert "| status | resolved |" in report and "db-verify-integrity" in report
        copied = project.root / "repository" / "incidents" / incident
        # The copy is encrypted to the recipients and signed (ops/incident_copy.py), never in plain text.
        assert (copied / "report.md.age").exists() and (copied / "report.md.sig").exists()
        assert not (copied / "report.md").exists()
        dr_line = _journal(project, "staging")[-1]
        assert dr_line["command"] == "dr-drill" and dr_line["details"]["incident"] == incident

        # Staging was not touched; the scratch copy is gone but for its journal.
        with project.connect("staging") as conn:
            assert conn.execute("SELECT count(*) FROM orders").fetchone() == (150,)
        left = sorted(path.name for path in (project.root / ".cuisine" / "drill-staging").iterdir())
        assert left == ["journal.jsonl"]
    finally:
        project.destroy()

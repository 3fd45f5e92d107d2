"""Incidents without a server: validation, the store, journal linking, the report, the webhook payload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cuisine_db.config import Settings, load_settings
from cuisine_db.errors import UsageError
from cuisine_db.ops import incidents
from cuisine_db.ops.incident_report import duration, markdown
from cuisine_db.ops.journal import journal_path, journaled
from cuisine_db.ops.webhook import payload


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('default_env = "staging"\n'
                      '[environments.staging]\ndsn = "host=127.0.0.1 port=1 dbname=x"\n'
                      '[environments.production]\ndsn = "host=127.0.0.1 port=1 dbname=y"\nprotected = true\n')
    return load_settings({"CUISINE_DB_CONFIG": str(config)})


@pytest.mark.parametrize("value", ["9", "0", "-1", "1.5", "one", "", " ", None, "1; rm -rf /"])
def test_severity_must_be_1_to_4(value: str | None) -> None:
    with pytest.raises(UsageError):
        incidents.validate_severity(value)


@pytest.mark.parametrize("value", ["1", " 2 ", "4", 3])
def test_good_severities(value: str | int) -> None:
    assert incidents.validate_severity(value) in (1, 2, 3, 4)


@pytest.mark.parametrize("text", ["", "   ", "a;b", "$(reboot)", "`id`", "a|b", "a&b", "a>b", "a<b", "back\\slash",
                                  "two\nlines", "tab\there", "esc\x1b[31m", "bidi\u202eevil", "x" * 501])
def test_descriptions_refused(text: str) -> None:
    with pytest.raises(UsageError):
        incidents.validate_text(text, "description", required=True)


@pytest.mark.parametrize("text", ["Database failure", "Disk 95% full (primary), it's bad: see #ops/db", "Ünïcode ok",
                                  'quoted "word"'])
def test_descriptions_accepted(text: str) -> None:
    assert incidents.validate_text(text, "description", required=True) == text


@pytest.mark.parametrize("value", ["", "INC-1", "../INC-20250101-01", "INC-20250101-01; ls", "inc-20250101-01"])
def test_incident_ids_are_validated(value: str) -> None:
    with pytest.raises(UsageError):
        incidents.validate_id(value)


def test_ids_count_up_within_a_day_and_resolution_is_recorded(settings: Settings) -> None:
    first = incidents.open_incident(settings, "1", "Database failure")
    second = incidents.open_incident(settings, 3, "Slow replica", "production")
    assert first.id.startswith("INC-") and first.id.endswith("-01") and second.id.endswith("-02")
    assert first.env is None and first.scope == "all environments" and second.scope == "production"
    assert incidents.open_ids(settings, "staging") == [first.id]
    assert incidents.open_ids(settings, "production") == [first.id, second.id]
    resolved = incidents.resolve(settings, first.id, "restored from backup")
    assert resolved.status == "resolved" and resolved.resolution == "restored from backup"
    assert resolved.time_to_recovery() is not None and resolved.time_to_recovery() >= 0  # type: ignore[operator]
    assert incidents.open_ids(settings, "staging") == []
    with pytest.raises(UsageError, match="already resolved"):
        incidents.resolve(settings, first.id)
    with pytest.raises(UsageError, match="no incident"):
        incidents.get(settings, "INC-19990101-01")
    assert [i.id for i in incidents.all_incidents(settings)] == [second.id, first.id]


def test_an_unknown_environment_is_refused(settings: Settings) -> None:
    with pytest.raises(UsageError, match="unknown environment"):
        incidents.open_incident(settings, 1, "x", "nowhere")
    assert incidents.all_incidents(settings) == []


def test_journaled_commands_are_linked_while_open_and_only_then(settings: Settings) -> None:
    staging, production = settings.env("staging"), settings.env("production")
    with journaled(settings, staging, "before", {}):
        pass
    incident = incidents.open_incident(settings, 1, "Database failure", "production")
    with journaled(settings, production, "db-restore", {"backup": "latest"}):
        pass
    with journaled(settings, staging, "db-restore", {"backup": "latest"}):
        pass  # another environment: not linked to a production incident
    with pytest.raises(UsageError), journaled(settings, production, "db-apply-logs", {}):
        raise UsageError("boom")
    incidents.resolve(settings, incident.id)
    with journaled(settings, production, "after", {}):
        pass
    lines = [json.loads(line) for line in journal_path(settings, production).read_text().splitlines()]
    linked = {line["command"]: line.get("incidents") for line in lines}
    assert linked == {"db-restore": [incident.id], "db-apply-logs": [incident.id], "after": None}
    staging_lines = [json.loads(line) for line in journal_path(settings, staging).read_text().splitlines()]
    assert all("incidents" not in line for line in staging_lines)
    entries = incidents.linked_entries(settings, incidents.get(settings, incident.id))
    assert [entry["command"] for entry in entries] == ["db-restore", "db-apply-logs"]


def test_a_damaged_incident_file_never_stops_a_command(settings: Settings) -> None:
    incident = incidents.open_incident(settings, 2, "Replica lag")
    (settings.state_dir / "incidents" / f"{incident.id}.json").write_text("{not json")
    with journaled(settings, settings.env("staging"), "migrate", {}):
        pass
    line = json.loads(journal_path(settings, settings.env("staging")).read_text().splitlines()[-1])
    assert line["outcome"] == "ok" and "incidents" not in line


def test_the_report_is_a_timeline_with_time_to_recovery(settings: Settings) -> None:
    incident = incidents.Incident(
        id="INC-20250315-01", severity=1, description="Database failure | primary", env=None, status="resolved",
        opened_at="2025-03-15T01:42:00+00:00", opened_by="ops@db1", resolved_at="2025-03-15T02:30:05+00:00",
        resolved_by="ops@db1", resolution="restored")
    entries = [
        {"at": "2025-03-15T01:50:00.500+00:00", "env": "production", "who": "ops@db1", "command": "db-restore",
         "arguments": {"backup": "latest", "yes": True}, "outcome": "ok", "duration_s": 754.2},
        {"at": "2025-03-15T01:43:10.000+00:00", "env": "production", "who": "ops@db1", "command": "maintenance",
         "arguments": {"reason": "restoring"}, "outcome": "ok", "duration_s": 0.4},
        {"at": "2025-03-15T02:10:00.000+00:00", "env": "production", "who": "ops@db1",
         "command": "db-apply-logs", "arguments": {}, "outcome": "failed", "error": "segment missing",
         "duration_s": 3.0},
        {"at": "2025-03-15T01:42:00.100+00:00", "env": "staging", "who": "ops@db1", "command": "incident create",
         "arguments": {}, "outcome": "ok", "duration_s": 0.1},
    ]
    text = markdown(incident, entries)
    assert text.startswith("# Incident INC-20250315-01: Database failure \\| primary\n")
    assert "| time to recovery | 48m 05s |" in text
    assert "| commands | 3 run, 1 failed, 0 refused; 12m 38s spent in commands |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and ":" in line.split("|")[1]]
    assert [row.split(" | ")[4] for row in rows] == ["incident opened", "maintenance", "db-restore", "db-apply-logs",
                                                      "incident resolved"]
    assert "| 01:50:00 | +8m 00s | production | ops@db1 | db-restore | backup=latest, yes=True | ok | 12m 34s |" in text
    assert "**failed**: segment missing" in text
    open_one = incidents.Incident(id="INC-20250315-02", severity=2, description="x", env="production", status="open",
                                  opened_at="2025-03-15T01:00:00+00:00", opened_by="ops@db1")
    assert "not resolved yet" in markdown(open_one, [])


def test_durations_read_like_a_person_wrote_them() -> None:
    assert duration(4.24) == "4.2s"
    assert duration(65) == "1m 05s"
    assert duration(3725) == "1h 02m 05s"


def test_export_holds_what_must_survive_the_host(settings: Settings) -> None:
    incident = incidents.open_incident(settings, 1, "Database failure")
    with journaled(settings, settings.env("production"), "db-restore", {"backup": "latest"}):
        pass
    blobs = incidents.export(settings, incident.id)
    prefix = f"incidents/{incident.id}/"
    assert sorted(blobs) == [prefix + "incident.json", prefix + "journal.jsonl", prefix + "report.md"]
    assert json.loads(blobs[prefix + "incident.json"])["description"] == "Database failure"
    assert [json.loads(line)["command"] for line in blobs[prefix + "journal.jsonl"].splitlines()] == \
        ["db-restore"]
    assert b"db-restore" in blobs[prefix + "report.md"]


def test_the_webhook_payload_speaks_slack_and_machines() -> None:
    incident = incidents.Incident(id="INC-20250315-01", severity=1, description="Database failure", env=None,
                                  status="open", opened_at="2025-03-15T01:42:00+00:00", opened_by="ops@db1")
    body = payload("opened", incident)
    assert body["event"] == "incident.opened"
    assert body["text"] == "Incident INC-20250315-01 opened (severity 1, critical, all environments): Database failure"
    assert body["incident"]["id"] == "INC-20250315-01"  # type: ignore[index]

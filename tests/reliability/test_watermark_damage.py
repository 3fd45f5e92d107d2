"""Issue 15 item 3, fail safe: a damaged local high-water mark never turns the rollback check off. Every signed
backup is untrusted naming the file, `backup status` is red, restore of `latest` and by name exits 4, expire deletes
nothing; `backup rebuild-watermark` (confirmed, journaled, the damaged file kept) brings trust back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from backup_fixtures import BackupProject

from cuisine_db.storage import open_repository


def _snapshot(project: BackupProject) -> dict[str, str]:
    settings = project.settings
    repository = open_repository(settings, settings.env("development"))
    return {info.key: hashlib.sha256(repository.get_bytes(info.key)).hexdigest() for info in repository.list("")}


def _status_findings(project: BackupProject) -> list[dict[str, str]]:
    status = project.cli("backup", "status", "--env", "development", "--json")
    assert status.returncode in (0, 1), status.stderr
    findings: list[dict[str, str]] = json.loads(status.stdout)["findings"]
    return findings


def test_a_damaged_watermark_distrusts_every_backup_until_it_is_rebuilt(bproject: BackupProject) -> None:
    first = bproject.backup("development")
    second = bproject.backup("development")
    mark = bproject.root / ".cuisine" / "development" / "backup-watermark.json"
    assert json.loads(mark.read_text())["name"] == second
    assert not [f for f in _status_findings(bproject) if f["check"] == "backup watermark"]
    mark.write_text('{"sequence": 2, "name": "development-logical-2026')  # a torn write, a bad disk, a hand edit

    listed = {entry["name"]: entry for entry in bproject.backups("development", "--all")}
    for name in (first, second):
        assert not listed[name]["trusted"], listed[name]
        assert str(mark) in listed[name]["problem"] and "rollback check impossible" in listed[name]["problem"]
    findings = [f for f in _status_findings(bproject) if f["check"] == "backup watermark"]
    assert [(f["severity"], f["subject"]) for f in findings] == [("error", str(mark))], findings
    assert "rebuild-watermark" in findings[0]["fix"]

    latest = bproject.cli("restore", "database", "--env", "development", "--backup", "latest", "--yes")
    assert latest.returncode == 4 and str(mark) in latest.stderr, latest.stderr
    named = bproject.cli("restore", "database", "--env", "development", "--backup", first, "--yes")
    assert named.returncode == 4 and "rollback check impossible" in named.stderr, named.stderr
    before = _snapshot(bproject)
    expired = bproject.cli("backup", "expire", "--env", "development", "--yes")
    assert expired.returncode in (0, 1), expired.stderr
    assert _snapshot(bproject) == before, "nothing is deleted while no backup can be trusted"
    # A backup taken meanwhile continues the repository's sequence; the damaged file is not overwritten.
    damaged = mark.read_bytes()
    third = bproject.backup("development")
    assert mark.read_bytes() == damaged

    planned = bproject.cli("backup", "rebuild-watermark", "--env", "development", "--dry-run", "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["name"] == third and mark.read_bytes() == damaged
    unconfirmed = bproject.cli("backup", "rebuild-watermark", "--env", "development")
    assert unconfirmed.returncode == 4 and mark.read_bytes() == damaged, unconfirmed.stderr
    rebuilt = bproject.cli("backup", "rebuild-watermark", "--env", "development", "--yes", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    report = json.loads(rebuilt.stdout)
    assert Path(report["kept_as"]).read_bytes() == damaged
    assert json.loads(mark.read_text())["name"] == third
    listed = {entry["name"]: entry for entry in bproject.backups("development", "--all")}
    assert all(listed[name]["trusted"] for name in (first, second, third)), listed
    assert not [f for f in _status_findings(bproject) if f["check"] == "backup watermark"]
    restored = bproject.cli("restore", "database", "--env", "development", "--backup", "latest", "--yes")
    assert restored.returncode == 0, restored.stderr
    again = bproject.cli("backup", "rebuild-watermark", "--env", "development", "--yes")
    assert again.returncode == 2 and "sound" in again.stderr, "a sound mark is never replaced"
    journal = [json.loads(line) for line in
               (bproject.root / ".cuisine" / "development" / "journal.jsonl").read_text().splitlines()]
    outcomes = [e["outcome"] for e in journal if e["command"] == "backup rebuild-watermark"]
    assert outcomes == ["ok", "refused", "ok", "failed"], outcomes  # dry run, unconfirmed, done, a sound mark

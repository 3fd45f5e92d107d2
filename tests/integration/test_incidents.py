"""The runbook's `make incident-create` and the incident commands, through make and the CLI: bad input refused
with one line and nothing written, the timeline report, and the webhook announced to a receiver on loopback.

Incidents need no database: the environments here point at a port nothing listens on, so the commands linked
to an incident fail as an outage's would, and are recorded all the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyrage
import pytest
from cli_support import run_cli, run_make

from cuisine_db.postgres.ports import free_port

SECRET_TOKEN = "T0KEN-very-secret-4242"
HOOK_VARIABLE = "CUISINE_TEST_INCIDENT_HOOK"


@dataclass
class Receiver:
    """A webhook receiver on loopback that records each POST and answers with `status`."""

    status: int = 200
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    port: int = 0

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{SECRET_TOKEN}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    record = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            record.calls.append((self.path, json.loads(body)))
            self.send_response(record.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


@dataclass
class Place:
    """A project folder whose environments are unreachable, with the webhook named by a variable."""

    root: Path
    hook: str | None = None

    def make(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_make(self.root / "cuisine-db.toml", *args, extra=self._hook(), drop=self._unhooked())

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.root / "cuisine-db.toml", *args, extra=self._hook(), drop=self._unhooked())

    def _hook(self) -> dict[str, str]:
        return {} if self.hook is None else {HOOK_VARIABLE: self.hook}

    def _unhooked(self) -> tuple[str, ...]:
        return () if self.hook is not None else (HOOK_VARIABLE,)

    def state(self) -> list[Path]:
        folder = self.root / ".cuisine"
        return sorted(folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def place(tmp_path: Path) -> Place:
    dead = free_port()
    (tmp_path / "cuisine-db.toml").write_text(
        'default_env = "staging"\n'
        f'[incidents]\nwebhook_url_env = "{HOOK_VARIABLE}"\n'
        f'[environments.staging]\ndsn = "host=127.0.0.1 port={dead} dbname=cuisine user=ops"\n'
        f'[environments.production]\ndsn = "host=127.0.0.1 port={dead} dbname=cuisine user=ops"\nprotected = true\n')
    return Place(tmp_path)


def test_bad_input_is_one_line_exit_2_and_writes_nothing(place: Place, tmp_path: Path) -> None:
    touched = tmp_path / "pwned"
    # The acceptance's cases through make; the rest of the validation is unit-tested (tests/unit).
    cases = [
        (["incident-create", "severity=9", "description=Database failure"], "severity must be 1 to 4, not '9'"),
        (["incident-create", "severity=1", "description="], "description is required"),
        (["incident-create", "severity=1", "description=down; rm -rf /"], "shell metacharacter ';'"),
        (["incident-create", "severity=1", f"description=$(shell touch {touched})"], "shell metacharacter '$'"),
        (["incident-create", "severity=1", f"description=`touch {touched}`"], "shell metacharacter '`'"),
        (["incident-resolve", "id=../../etc/passwd"], "is not an incident id"),
    ]
    for args, expected in cases:
        result = place.make(*args)
        lines = [line for line in result.stderr.splitlines() if not line.startswith("make")]
        assert result.returncode != 0 and "Error 2" in result.stderr, (args, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (args, result.stderr)
        assert result.stdout == ""
    assert place.state() == []  # no incident, no journal line
    assert not touched.exists()


def test_the_runbook_flow_gives_a_timeline_and_announces_open_and_resolve(place: Place, receiver: Receiver) -> None:
    place.hook = receiver.url()
    created = place.make("incident-create", "severity=1", "description=Database failure")
    assert created.returncode == 0, created.stderr
    incident_id = created.stdout.strip()
    assert incident_id.startswith("INC-") and "\n" not in incident_id
    assert "notified the incident webhook (127.0.0.1: HTTP 200)" in created.stderr
    # Commands during the outage fail (nothing is listening) and are linked all the same.
    for args in (["db-verify-integrity", "env=production"], ["db-check-corruption"]):
        result = place.make(*args)
        assert "Error 3" in result.stderr, result.stderr
    resolved = place.make("incident-resolve", f"id={incident_id}", "note=restored from the newest backup")
    assert resolved.returncode == 0, resolved.stderr
    assert "time to recovery" in resolved.stderr
    report = place.make("incident-report", f"id={incident_id}")
    assert report.returncode == 0, report.stderr
    text = report.stdout
    assert text.startswith(f"# Incident {incident_id}: Database failure\n")
    assert "| severity | 1 (critical) |" in text and "| status | resolved |" in text
    assert "| scope | all environments |" in text and "| resolution | restored from the newest backup |" in text
    assert "| commands | 2 run, 2 failed, 0 refused;" in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and line.count(" | ") == 7]
    assert [(row[2], row[4]) for row in rows[1:]] == [
        ("all", "incident opened"), ("production", "db-verify-integrity"), ("staging", "db-check-corruption"),
        ("all", "incident resolved")]
    assert "**failed**: cannot connect to environment 'production'" in text
    # The receiver heard both events, at the URL with its token.
    assert [(path, body["event"], body["incident"]["id"]) for path, body in receiver.calls] == [
        (f"/hooks/{SECRET_TOKEN}", "incident.opened", incident_id),
        (f"/hooks/{SECRET_TOKEN}", "incident.resolved", incident_id)]
    assert receiver.calls[0][1]["text"].endswith("(severity 1, critical, all environments): Database failure")
    # The token never reaches output, the journal or the incident's record.
    outputs = [created, resolved, report]
    assert all(SECRET_TOKEN not in result.stdout + result.stderr for result in outputs)
    assert all(SECRET_TOKEN not in path.read_text() for path in place.state() if path.is_file())
    record = json.loads((place.root / ".cuisine" / "incidents" / f"{incident_id}.json").read_text())
    assert [note["detail"] for note in record["notifications"]] == ["127.0.0.1: HTTP 200"] * 2


def test_an_unreachable_or_failing_webhook_does_not_stop_an_incident(place: Place, receiver: Receiver) -> None:
    place.hook = f"http://127.0.0.1:{free_port()}/hooks/{SECRET_TOKEN}"
    created = place.cli("incident", "create", "--severity", "2", "--description", "Replica lag", "--json")
    assert created.returncode == 0, created.stderr
    incident = json.loads(created.stdout)
    assert "could not notify the incident webhook (127.0.0.1: Connection refused)" in created.stderr
    assert incident["notifications"][0]["delivered"] is False
    receiver.status = 500
    place.hook = receiver.url()
    resolved = place.cli("incident", "resolve", incident["id"])
    assert resolved.returncode == 0, resolved.stderr
    assert "could not notify the incident webhook (127.0.0.1: HTTP 500)" in resolved.stderr
    assert SECRET_TOKEN not in created.stderr + resolved.stderr
    again = place.cli("incident", "resolve", incident["id"])
    assert again.returncode == 2 and "already resolved" in again.stderr


def test_an_incident_is_copied_to_every_repository_and_survives_the_host(tmp_path: Path, s3_server: Any,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Staging backs up to a folder, production to S3: a project-wide incident goes to both, on open and resolve;
    the copies alone tell the story once the host's state is gone. An unreachable repository is a warning."""
    from backup_fixtures import S3_KEY_VAR, S3_SECRET, S3_SECRET_VAR

    bucket = s3_server.bucket()
    dead = free_port()
    config = tmp_path / "cuisine-db.toml"

    def write_config(endpoint: str) -> None:
        config.write_text(
            f'[environments.staging]\ndsn = "host=127.0.0.1 port={dead} dbname=cuisine user=ops"\n'
            f'[environments.staging.backup]\nrepository = "{(tmp_path / "repository").as_uri()}"\n'
            f'[environments.production]\ndsn = "host=127.0.0.1 port={dead} dbname=cuisine user=ops"\n'
            f'[environments.production.backup]\nrepository = "s3://{bucket}/cuisine"\ns3_endpoint = "{endpoint}"\n'
            f's3_access_key_env = "{S3_KEY_VAR}"\ns3_secret_key_env = "{S3_SECRET_VAR}"\n')

    write_config(s3_server.endpoint)
    place = Place(tmp_path)
    monkeypatch.setenv(S3_KEY_VAR, "test")
    monkeypatch.setenv(S3_SECRET_VAR, S3_SECRET)
    assert place.cli("backup", "keygen").returncode == 0
    kept = tmp_path / "off-host"  # the operator's copy of the age key and the signing public key, kept elsewhere
    shutil.copytree(tmp_path / ".cuisine" / "keys", kept)
    created = place.make("incident-create", "severity=2", "description=Disk failing on the primary")
    assert created.returncode == 0, created.stderr
    incident_id = created.stdout.strip()
    assert f"copied to s3://{bucket}/cuisine: incidents/{incident_id}/ (3 files)" in created.stderr
    resolved = place.make("incident-resolve", f"id={incident_id}", "note=replaced the disk")
    assert resolved.returncode == 0, resolved.stderr
    shutil.rmtree(tmp_path / ".cuisine")  # the host is gone
    local = tmp_path / "repository" / "incidents" / incident_id
    s3 = s3_server.client()

    identity = pyrage.x25519.Identity.from_str((kept / "backup.key").read_text().splitlines()[-1])

    def opened(name: str, encrypted: bytes, signature: bytes) -> str:
        """Decrypted with the age key and checked with openssl against the signing key, as by hand."""
        plain = pyrage.decrypt(encrypted, [identity])
        (tmp_path / "body").write_bytes(plain)
        (tmp_path / "sig").write_bytes(signature)
        checked = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(kept / "signing.pem"),
                                  "-rawin", "-in", str(tmp_path / "body"), "-sigfile", str(tmp_path / "sig")],
                                 capture_output=True, check=False)
        assert checked.returncode == 0, f"{name}: {checked.stderr!r}"
        return str(plain.decode())

    def in_s3(name: str) -> str:
        def get(key: str) -> bytes:
            body: bytes = s3.get_object(Bucket=bucket, Key=f"cuisine/incidents/{incident_id}/{key}")["Body"].read()
            return body

        return opened(name, get(name + ".age"), get(name + ".sig"))

    def in_folder(name: str) -> str:
        assert not (local / name).exists(), "no plain copy in the repository"
        return opened(name, (local / f"{name}.age").read_bytes(), (local / f"{name}.sig").read_bytes())

    for read in (in_folder, in_s3):
        record = json.loads(read("incident.json"))
        assert (record["status"], record["description"], record["resolution"]) == \
            ("resolved", "Disk failing on the primary", "replaced the disk")
        report = read("report.md")
        assert report.startswith(f"# Incident {incident_id}: Disk failing on the primary\n")
        assert "incident resolved" in report and "| status | resolved |" in report
        commands = [json.loads(line)["command"] for line in read("journal.jsonl").splitlines()]
        assert commands == ["incident create", "incident resolve"]
    # The object store is down: the incident opens all the same, with a warning; copying again says so.
    write_config(f"http://127.0.0.1:{free_port()}")
    down = place.make("incident-create", "severity=1", "description=Object store unreachable")
    assert down.returncode == 0, down.stderr
    assert f"could not copy {down.stdout.strip()} to s3://{bucket}/cuisine" in down.stderr
    again = place.cli("incident", "copy", down.stdout.strip())
    assert again.returncode == 3 and "was not copied to" in again.stderr.splitlines()[-1], again.stderr
    assert S3_SECRET not in down.stderr + again.stderr

"""Retention on a real repository: after 400 days of daily backups exactly the grandfather-father-son set survives,
a backup being written is left alone, an abandoned one goes, and --dry-run changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import sleep

import pytest
from backup_fixtures import S3_KEY_VAR, S3_SECRET, S3_SECRET_VAR, S3Server, gfs_by_calendar
from cli_support import run_cli

from cuisine_db.backup import catalog
from cuisine_db.backup.manifest import VERIFICATION, Manifest, ObjectEntry, prefix
from cuisine_db.backup.retention import ExpireReport
from cuisine_db.backup.retention import expire as run_expire
from cuisine_db.config import load_settings
from cuisine_db.errors import RefusedError
from cuisine_db.storage import LocalRepository, Repository, signing
from cuisine_db.storage.s3 import S3Location, S3Repository


def signer_of(root: Path) -> signing.Signer:
    """The project's default signing key (what `backup keygen` makes): fake backups are signed like real ones."""
    return signing.signer_from_file(signing.generate(root / ".cuisine" / "keys").key_file)


def fake_backup(repository: Repository, at: datetime, signer: signing.Signer, *, complete: bool = True) -> str:
    name = f"production-logical-{at.strftime('%Y%m%dT%H%M%SZ')}"
    if not complete:
        repository.put_bytes(prefix(name) + "1.dat.zst.age", b"rows")
    else:
        manifest = Manifest(
            name=name, env="production", type="logical", database="cuisine", server_version="14.23",
            server_version_num=140023, system_identifier=None, timeline=None, start_lsn=None, stop_lsn=None,
            started_at=at, finished_at=at + timedelta(minutes=3), tool={"pg_dump": "14.23"}, dump={},
            encryption={}, compression={}, tables=(),
            objects=(ObjectEntry("1.dat.zst.age", "1.dat", 4, "0" * 64, 4),))
        body = manifest.to_json()
        repository.put_bytes(prefix(name) + "manifest.sig", signer.sign(body))
        repository.put_bytes(prefix(name) + "manifest.json", body)
    return name


def expire(config: Path, environ: dict[str, str], *extra: str) -> dict[str, object]:
    result = run_cli(config, "backup", "expire", "--env", "production", "--json", "--yes", *extra, extra=environ,
                     timeout=300)
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_400_days_of_daily_backups_leave_exactly_the_gfs_set(backend: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    environ: dict[str, str] = {}
    if backend == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        bucket = s3.bucket()
        repository: Repository = S3Repository(S3Location(bucket, "r", s3.endpoint, access_key="t",
                                                         secret_key=S3_SECRET))
        storage = (f'repository = "s3://{bucket}/r"\ns3_endpoint = "{s3.endpoint}"\n'
                   f's3_access_key_env = "{S3_KEY_VAR}"\ns3_secret_key_env = "{S3_SECRET_VAR}"\n')
        environ = {S3_KEY_VAR: "t", S3_SECRET_VAR: S3_SECRET}
    else:
        repository = LocalRepository(tmp_path / "repo")
        storage = f'repository = "{(tmp_path / "repo").as_uri()}"\n'
    config = tmp_path / "cuisine-db.toml"
    # Retention never connects to the database: the dsn only has to be valid.
    config.write_text('[environments.production]\ndsn = "host=127.0.0.1 port=1 dbname=x"\n'
                      f"[environments.production.backup]\n{storage}")
    now = datetime.now(UTC)
    if now.time() >= time(23, 58):
        # The calendar slots are the expire's own today: a run that crosses midnight would judge another set.
        sleep((datetime.combine(now.date() + timedelta(days=1), time(0), UTC) - now).total_seconds() + 1)
        now = datetime.now(UTC)
    today = now.date()
    days = [today - timedelta(days=n) for n in range(400)]
    signer = signer_of(tmp_path)
    # Each day's backup at midnight: never later than now, so today's is not "dated in the future" when the
    # suite runs in the first hour of a UTC day.
    names = {fake_backup(repository, datetime.combine(day, time(0), UTC), signer): day for day in days}
    writing = fake_backup(repository, now - timedelta(minutes=5), signer, complete=False)
    abandoned = fake_backup(repository, now - timedelta(days=3, minutes=5), signer, complete=False)
    expected = gfs_by_calendar(today, 7, 4, 12)

    preview = expire(config, environ, "--dry-run")
    assert {names[n] for n in preview["kept"]} == expected  # type: ignore[attr-defined]
    assert len(preview["expired"]) == 400 - len(expected)  # type: ignore[arg-type]
    assert len({i.key.split("/")[1] for i in repository.list("backups/")}) == 402

    report = expire(config, environ)
    assert report["abandoned"] == [abandoned] and report["in_progress"] == [writing]
    left = {i.key.split("/")[1] for i in repository.list("backups/")}
    assert {names[n] for n in left if n in names} == expected
    assert left == set(report["kept"]) | {writing}  # type: ignore[call-overload]
    # Running again changes nothing: the set is stable.
    assert expire(config, environ)["expired"] == []


def test_confirmation_lives_in_the_service_and_only_what_was_shown_and_still_goes_is_deleted(tmp_path: Path) -> None:
    repository = LocalRepository(tmp_path / "repo")
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\ndsn = "host=127.0.0.1 port=1 dbname=x"\nprotected = true\n'
                      f'[environments.production.backup]\nrepository = "{(tmp_path / "repo").as_uri()}"\n'
                      "[environments.production.backup.retention]\ndaily = 1\nweekly = 0\nmonthly = 0\n")
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("production")
    now = datetime.now(UTC)
    signer = signer_of(tmp_path)
    names = [fake_backup(repository, now - timedelta(minutes=minutes), signer) for minutes in (30, 20, 10)]
    before = {info.key for info in repository.list("")}
    shown: list[list[str]] = []

    def show(report: ExpireReport) -> None:
        shown.append(list(report.expired))

    with pytest.raises(RefusedError, match="no terminal"):
        run_expire(settings, env, show=show, ask=None)
    with pytest.raises(RefusedError, match="did not match"):
        run_expire(settings, env, show=show, ask=lambda _question: "staging")
    assert {info.key for info in repository.list("")} == before
    assert shown == [names[:2], names[:2]]  # the plan came first, every time

    def verified_meanwhile(_question: str) -> str:
        # While the operator reads the plan, the oldest backup is verified: it is now the newest verified one.
        catalog.record(settings, env, repository, names[0], VERIFICATION, catalog.Check(
            at=datetime.now(UTC), ok=True, by="test", seconds=1, problems=[], details={}))
        return "production"

    done = run_expire(settings, env, show=show, ask=verified_meanwhile)
    assert done.expired == [names[1]] and "newest verified" in done.kept[names[0]]
    left = {info.key.split("/")[1] for info in repository.list("backups/")}
    assert left == {names[0], names[2]}

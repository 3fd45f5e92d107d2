"""object_lock_days: every object written to S3 carries Object Lock retention (COMPLIANCE) until now + N days; a
bucket without Object Lock is refused at the first write. Against moto on loopback."""

from __future__ import annotations

import io
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backup_fixtures import S3_SECRET, AgeKeys, S3Server
from botocore.exceptions import ClientError
from pitr_fixtures import make_wal_archive

from cuisine_db.backup.wal import access as wal_access
from cuisine_db.errors import EXIT_REFUSED, CuisineDbError
from cuisine_db.storage import pipeline
from cuisine_db.storage.keys import parse_recipients
from cuisine_db.storage.s3 import LOCK_MODE, S3Location, S3Repository

DAYS = 3


def _repository(s3: S3Server, *, locked: bool) -> S3Repository:
    bucket = "l-" + uuid.uuid4().hex[:16]
    s3.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=locked)
    return S3Repository(S3Location(bucket=bucket, prefix="cuisine", endpoint=s3.endpoint, access_key="test",
                                   secret_key=S3_SECRET, lock_days=DAYS))


def test_every_put_carries_retention_and_a_locked_version_cannot_be_deleted(s3_server: S3Server,
                                                                            tmp_path: Path) -> None:
    repository = _repository(s3_server, locked=True)
    before = datetime.now(UTC)
    repository.put_bytes("backups/x/manifest.json", b"{}")
    import pyrage

    recipient = str(pyrage.x25519.Identity.generate().to_public())
    pipeline.store(repository, "backups/x/toc.dat.zst.age", io.BytesIO(b"data" * 1000), parse_recipients([recipient]))
    client = s3_server.client()
    bucket = repository.location.bucket
    for key in ("cuisine/backups/x/manifest.json", "cuisine/backups/x/toc.dat.zst.age"):
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ObjectLockMode"] == LOCK_MODE == "COMPLIANCE"
        until = head["ObjectLockRetainUntilDate"]
        assert before + timedelta(days=DAYS) - timedelta(minutes=1) <= until <= datetime.now(UTC) + timedelta(days=DAYS)
        with pytest.raises(ClientError) as refused:
            client.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
        assert refused.value.response["Error"]["Code"] == "AccessDenied", refused.value.response
        assert client.head_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])["ContentLength"] > 0
    # Retention expire's delete leaves a delete marker; the locked version itself stays until its date.
    repository.delete(["backups/x/manifest.json"])
    assert repository.stat("backups/x/manifest.json") is None
    versions = client.list_object_versions(Bucket=bucket, Prefix="cuisine/backups/x/manifest.json")["Versions"]
    assert len(versions) == 1


def test_a_bucket_without_object_lock_is_refused_at_the_first_write(s3_server: S3Server) -> None:
    repository = _repository(s3_server, locked=False)
    with pytest.raises(CuisineDbError) as refused:
        repository.put_bytes("backups/x/manifest.json", b"{}")
    assert refused.value.exit_code == EXIT_REFUSED
    assert "has no Object Lock" in refused.value.message and "object_lock_days" in refused.value.message
    assert repository.stat("backups/x/manifest.json") is None


def test_object_lock_days_reaches_the_archive_command_and_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\n[environments.production.backup]\n'
                      'repository = "s3://bucket/prefix"\nobject_lock_days = 30\n')
    assert wal_access.load(config, "production").object_lock_days == 30
    config.write_text('[environments.production]\n[environments.production.backup]\n'
                      'repository = "s3://bucket/prefix"\nobject_lock_days = 0\n')
    with pytest.raises(CuisineDbError, match="object_lock_days"):
        wal_access.load(config, "production")


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "unlocked"])
def test_wal_push_writes_with_retention_or_refuses_a_bucket_without_object_lock(
        s3_server: S3Server, tmp_path: Path, age_keys: AgeKeys, locked: bool) -> None:
    archive = make_wal_archive(tmp_path / "wal", age_keys, backend="s3", s3=s3_server)
    bucket = "w-" + uuid.uuid4().hex[:16]
    s3_server.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=locked)
    text = re.sub(r's3://[^/"]+/', f"s3://{bucket}/", archive.config.read_text())
    archive.config.write_text(text.replace("[environments.production.backup]\n",
                                           f"[environments.production.backup]\nobject_lock_days = {DAYS}\n"))
    segment = "000000010000000000000001"
    archive.segment(segment, os.urandom(1 << 16), ready=False)
    pushed = archive.run("push", f"pg_wal/{segment}")
    client = s3_server.client()
    stored = [item["Key"] for item in client.list_objects_v2(Bucket=bucket, Prefix="cuisine/wal/").get("Contents", [])]
    if not locked:
        assert pushed.returncode != 0 and b"has no Object Lock" in pushed.stderr, pushed.stderr
        assert stored == []
        return
    assert pushed.returncode == 0, pushed.stderr
    assert len(stored) == 2, stored  # the copy and its signed record
    for key in stored:
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=DAYS - 1)
    assert archive.fetch(segment)[0] == 0


def test_object_lock_days_needs_an_s3_repository(tmp_path: Path) -> None:
    from cuisine_db.config import load_settings
    from cuisine_db.errors import EXIT_USAGE

    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\n[environments.production.backup]\n'
                      f'repository = "{tmp_path / "repository"}"\nobject_lock_days = 30\n')
    with pytest.raises(CuisineDbError, match="object_lock_days") as refused:
        load_settings({"CUISINE_DB_CONFIG": str(config)})
    assert refused.value.exit_code == EXIT_USAGE

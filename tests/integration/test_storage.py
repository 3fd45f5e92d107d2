"""Both repository backends behave the same: streamed writes visible only when committed, multipart for large
objects, listing by prefix, stat, delete, create-only writes, and cleanup of abandoned uploads."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path

import pyrage
import pytest
from backup_fixtures import S3_SECRET, S3Server

from cuisine_db.storage import LocalRepository, ObjectExists, ObjectMissing, Repository
from cuisine_db.storage.pipeline import fetch, store
from cuisine_db.storage.s3 import S3Location, S3Repository


@pytest.fixture
def repository(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Repository:
    if backend == "file":
        return LocalRepository(tmp_path / "repo")
    s3: S3Server = request.getfixturevalue("s3_server")
    return S3Repository(S3Location(bucket=s3.bucket(), prefix="cuisine/test", endpoint=s3.endpoint,
                                   access_key="test", secret_key=S3_SECRET))


def test_objects_appear_only_when_committed(repository: Repository) -> None:
    writer = repository.open_write("backups/a/1.dat.zst.age")
    writer.write(b"x" * 1000)
    assert repository.stat("backups/a/1.dat.zst.age") is None
    assert list(repository.list("backups/")) == []
    writer.commit()
    info = repository.stat("backups/a/1.dat.zst.age")
    assert info is not None and info.size == 1000
    with repository.open_write("backups/a/2.dat.zst.age") as abandoned:
        abandoned.write(b"y" * 10)  # left without commit: never visible
    repository.put_bytes("backups/b/manifest.json", b"{}")
    assert [i.key for i in repository.list("backups/")] == ["backups/a/1.dat.zst.age", "backups/b/manifest.json"]
    assert [i.key for i in repository.list("backups/b/")] == ["backups/b/manifest.json"]
    with pytest.raises(ObjectExists):
        repository.put_bytes("backups/b/manifest.json", b"{}", overwrite=False)
    repository.delete(["backups/a/1.dat.zst.age", "backups/a/never-there"])
    assert [i.key for i in repository.list("")] == ["backups/b/manifest.json"]
    with pytest.raises(ObjectMissing):
        repository.get_bytes("backups/a/1.dat.zst.age")
    with pytest.raises(ValueError, match="bad repository key"):
        repository.stat("../etc/passwd")


def test_a_large_object_streams_through_the_pipeline_in_parts(repository: Repository) -> None:
    identity = pyrage.x25519.Identity.generate()
    data = os.urandom(1 << 20) * 21  # 21 MiB: three parts of 8 MiB on S3
    stored = store(repository, "backups/big/1.dat.zst.age", io.BytesIO(data), [identity.to_public()], level=1)
    out = io.BytesIO()
    fetch(repository, stored.key, out, [identity], expect_size=stored.size, expect_sha256=stored.sha256)
    assert out.getvalue() == data
    # An upload a killed run began and never finished is cleared by cleanup, and was never visible.
    writer = repository.open_write("backups/big/2.dat.zst.age")
    writer.write(os.urandom(9 << 20))
    assert repository.stat("backups/big/2.dat.zst.age") is None
    assert repository.cleanup(timedelta(seconds=-1)) >= 1
    assert [i.key for i in repository.list("backups/big/")] == ["backups/big/1.dat.zst.age"]

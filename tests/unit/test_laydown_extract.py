"""laydown.extract() on a local repository, without a server: the members land in their files, and a write that
fails (a name in the way, a full disk) is one line naming the object, not a traceback."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import pytest

from cuisine_db.backup import laydown
from cuisine_db.backup.manifest import Manifest, ObjectEntry, prefix
from cuisine_db.backup.objects import BackupSource
from cuisine_db.errors import UnavailableError
from cuisine_db.storage import LocalRepository
from cuisine_db.storage.pipeline import store

IDENTITY = pyrage.x25519.Identity.generate()
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
NAME = "development-full-20260102T030405Z"


def _backup(folder: Path, members: dict[str, bytes]) -> BackupSource:
    """A backup whose base.tar holds `members` (files; their folders come first, as pg_basebackup writes them)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        folders = sorted({str(Path(name).parent) for name in members} - {"."})
        for name in folders:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o700
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(AT.timestamp())
            tar.addfile(info, io.BytesIO(data))
    plain = buffer.getvalue()
    repository = LocalRepository(folder)
    stored = store(repository, prefix(NAME) + "base.tar.zst.age", io.BytesIO(plain), [IDENTITY.to_public()])
    entry = ObjectEntry(name="base.tar.zst.age", file="base.tar", size=stored.size, sha256=stored.sha256,
                        plain_size=len(plain))
    manifest = Manifest(name=NAME, env="development", type="full", database="cuisine", server_version="18.1",
                        server_version_num=180001, system_identifier="1", timeline=1, start_lsn="0/2000028",
                        stop_lsn="0/2000100", started_at=AT, finished_at=AT, tool={}, dump={}, encryption={},
                        compression={}, tables=(), objects=(entry,))
    return BackupSource(repository, manifest, [IDENTITY])


def test_members_land_in_their_files_and_a_name_in_the_way_is_one_clear_error(tmp_path: Path) -> None:
    members = {"PG_VERSION": b"18\n", "base/1/1259": bytes(range(256)) * 4000, "global/pg_control": b"c" * 8192}
    source = _backup(tmp_path / "repository", members)
    data = tmp_path / "data"
    laydown.extract(source, data, tmp_path / "tablespaces", None)
    assert {str(p.relative_to(data)): p.read_bytes() for p in data.rglob("*") if p.is_file()} == members
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "base").write_bytes(b"a file where the backup has a folder")
    with pytest.raises(UnavailableError, match=r"cannot lay base\.tar down into .*blocked: Not a directory"):
        laydown.extract(source, blocked, tmp_path / "tablespaces2", None)
    assert (blocked / "base").read_bytes() == b"a file where the backup has a folder"

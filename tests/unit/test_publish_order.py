"""catalog.publish raises the local high-water mark before it writes the manifest, so a run killed between the two
never leaves a complete backup whose sequence the next run takes again (found by test_backup_faults' kill -9
trials in CI: the later of two backups with one sequence is judged rolled back, untrusted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cuisine_db.backup import catalog, watermark
from cuisine_db.backup.manifest import MANIFEST, Manifest, ObjectEntry, prefix
from cuisine_db.config import load_settings
from cuisine_db.storage import LocalRepository, ObjectExists


def _manifest(at: datetime) -> Manifest:
    name = f"production-logical-{at:%Y%m%dT%H%M%SZ}"
    return Manifest(name=name, env="production", type="logical", database="cuisine", server_version="18.1",
                    server_version_num=180001, system_identifier=None, timeline=None, start_lsn=None,
                    stop_lsn=None, started_at=at, finished_at=at, tool={"pg_dump": "18.1"}, dump={},
                    encryption={}, compression={}, tables=(),
                    objects=(ObjectEntry("1.dat.zst.age", "1.dat", 4, "0" * 64, 4),))


def test_a_publish_cut_short_before_its_manifest_leaves_the_next_backup_trusted(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\ndsn = "host=127.0.0.1 port=1 dbname=x"\n'
                      f'[environments.production.backup]\nrepository = "{(tmp_path / "repo").as_uri()}"\n')
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("production")
    repository = LocalRepository(tmp_path / "repo")
    now = datetime.now(UTC).replace(microsecond=0)
    first = catalog.publish(settings, env, repository, _manifest(now - timedelta(minutes=30)))
    # The second run is cut short at its manifest (here: the name is taken, so put_bytes refuses to overwrite).
    cut = _manifest(now - timedelta(minutes=20))
    repository.put_bytes(prefix(cut.name) + MANIFEST, b"{}")
    with pytest.raises(ObjectExists):
        catalog.publish(settings, env, repository, cut)
    mark = watermark.read(settings, env)
    assert isinstance(mark, watermark.Mark) and first.sequence is not None
    assert mark.sequence == first.sequence + 1, "the mark is raised before the manifest is written"
    repository.delete([info.key for info in repository.list(prefix(cut.name))])
    third = catalog.publish(settings, env, repository, _manifest(now - timedelta(minutes=10)))
    assert third.sequence == first.sequence + 2, "the sequence the cut run took is never handed out again"
    listed = {entry.name: entry for entry in catalog.list_backups(settings, env, include_incomplete=True)}
    assert listed[first.name].complete and listed[third.name].complete, listed
    assert not any((entry.problem or "").startswith(catalog.UNTRUSTED) for entry in listed.values()), listed

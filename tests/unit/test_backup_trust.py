"""No rollback: sequence numbers must grow with backup names, within the repository and against the local
high-water mark (backup/catalog.py, backup/watermark.py; no server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cuisine_db import records
from cuisine_db.backup import catalog, watermark
from cuisine_db.backup.manifest import Manifest
from cuisine_db.config import Environment, Settings, load_settings

AT = datetime(2026, 11, 1, 1, tzinfo=UTC)


def entry(day: int, sequence: int | None) -> catalog.BackupEntry:
    at = AT + timedelta(days=day)
    name = f"production-logical-{at:%Y%m%dT%H%M%SZ}"
    manifest = Manifest(
        name=name, env="production", type="logical", database="cuisine", server_version="18.1",
        server_version_num=180001, system_identifier=None, timeline=None, start_lsn=None, stop_lsn=None,
        started_at=at, finished_at=at, tool={}, dump={}, encryption={}, compression={}, tables=(), objects=(),
        sequence=sequence, signer="k")
    return catalog.BackupEntry(name, "production", "logical", at, True, 0, manifest, None, None, None, "file:///r",
                               (), "k")


def test_a_sequence_not_above_an_older_names_is_rolled_back() -> None:
    entries = [entry(0, 1), entry(1, 2), entry(2, 2), entry(3, 3), entry(4, None)]
    checked = catalog._no_rollback(entries, None)
    assert [e.complete for e in checked] == [True, True, False, True, True]
    assert checked[2].problem is not None and checked[2].problem.startswith("untrusted: rolled back")
    assert checked[2].manifest is None, "nothing of a rolled-back manifest is used"


def test_the_local_high_water_mark_outlives_deleted_newer_backups(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\ndsn = "host=127.0.0.1 port=1 dbname=x"\n')
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("production")
    seen = entry(5, 9)
    assert seen.manifest is not None
    watermark.save(settings, env, watermark.Mark(9, seen.name, seen.manifest.started_at))
    watermark.save(settings, env, watermark.Mark(3, entry(1, 3).name, AT))  # never lowered
    mark = watermark.load(settings, env)
    assert mark is not None and mark.sequence == 9
    # The repository now shows an old backup (sequence 4) under a name newer than any seen: not trusted.
    replayed = replace(entry(6, 4))
    checked = catalog._no_rollback([entry(0, 1), replayed, entry(7, 10)], mark)
    assert [e.complete for e in checked] == [True, False, True]
    assert "already seen here" in (checked[1].problem or "")


def _production(tmp_path: Path) -> tuple[Settings, Environment]:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\ndsn = "host=127.0.0.1 port=1 dbname=x"\n')
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    return settings, settings.env("production")


WHEN = b'"started_at": "2026-11-01T01:00:00+00:00"'


@pytest.mark.parametrize("damage", [b"{not json", b'{"sequence": "many", "name": "x", "started_at": "now"}',
                                    b'{"sequence": 9, "name": "/etc/passwd", ' + WHEN + b"}",
                                    b'{"sequence": 9, "name": "staging-logical-20261106T010000Z", ' + WHEN + b"}",
                                    b""])
def test_a_damaged_high_water_mark_makes_every_signed_backup_untrusted_naming_it(tmp_path: Path,
                                                                                 damage: bytes) -> None:
    settings, env = _production(tmp_path)
    target = watermark.path(settings, env)
    target.parent.mkdir(parents=True)
    target.write_bytes(damage)
    with pytest.raises(records.DamagedRecord) as raised:
        watermark.load(settings, env)
    assert raised.value.where == str(target) and "rebuild-watermark" in (raised.value.hint or "")
    mark = watermark.read(settings, env)
    assert isinstance(mark, watermark.Unreadable)
    entries = [entry(0, 1), entry(1, 2), entry(2, None)]
    checked = catalog._no_rollback(entries, mark)
    assert [e.complete for e in checked] == [False, False, True], "the unsigned one is judged elsewhere"
    assert all(str(target) in (e.problem or "") and (e.problem or "").startswith("untrusted: rollback check")
               for e in checked[:2])
    # Another environment's backups are not judged by production's mark.
    other = replace(entry(3, 1), env="staging", name="staging-logical-20261105T010000Z")
    assert catalog._no_rollback([other], mark)[0].complete
    # A save never overwrites the damage (that would silently reset the check).
    watermark.save(settings, env, watermark.Mark(5, entry(4, 5).name, AT))
    assert target.read_bytes() == damage


def test_a_sound_high_water_mark_round_trips_and_a_missing_one_is_none(tmp_path: Path) -> None:
    settings, env = _production(tmp_path)
    assert watermark.load(settings, env) is None and watermark.read(settings, env) is None
    seen = entry(2, 7)
    watermark.save(settings, env, watermark.Mark(7, seen.name, AT))
    assert watermark.read(settings, env) == watermark.Mark(7, seen.name, AT)
    assert catalog._no_rollback([entry(3, 6)], watermark.read(settings, env))[0].complete is False


def test_two_backups_of_one_second_are_not_judged_by_their_names() -> None:
    """A tables backup (sequence 2) and a full one (3) started in the same second: the names, sorted, put the full
    one first, which says nothing about which came first (the demo hit it: a false 'rolled back')."""
    tables = entry(1, 2)
    full = replace(entry(1, 3), name=tables.name.replace("logical", "full"), type="full")
    checked = catalog._no_rollback([entry(0, 1), full, tables, entry(2, 4)], None)
    assert [e.complete for e in checked] == [True, True, True, True], [e.problem for e in checked]
    stale = catalog._no_rollback([entry(0, 5), full, tables], None)
    assert [e.complete for e in stale] == [True, False, False]  # an older second's higher sequence still counts

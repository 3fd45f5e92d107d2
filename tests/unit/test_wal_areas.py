"""The timeline record of WAL archive areas (backup/wal/areas.py): one area per system identifier, written by an
upgrade and taken back by its rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuisine_db.backup.wal import areas


def test_before_any_upgrade_everything_is_the_environments_first_area(tmp_path: Path) -> None:
    assert areas.read(tmp_path) == []
    assert areas.current("production", tmp_path) == "production"
    assert areas.area_for("production", tmp_path, "123") == "production"
    assert areas.all_areas("production", tmp_path) == ["production"]


def test_an_upgrade_gives_the_new_system_identifier_its_own_area_and_a_rollback_takes_it_back(tmp_path: Path) -> None:
    made = areas.begin("production", tmp_path, old_system="111", old_major=14, new_system="222", new_major=18,
                       at="2026-12-05T18:00:00+00:00")
    assert made == "production+222"
    assert areas.begin("production", tmp_path, old_system="111", old_major=14, new_system="222", new_major=18,
                       at="2026-12-05T18:00:00+00:00") == made  # a re-run after a kill writes the same
    assert areas.current("production", tmp_path) == "production+222"
    assert areas.area_for("production", tmp_path, "111") == "production"
    assert areas.area_for("production", tmp_path, "222") == "production+222"
    assert areas.area_for("production", tmp_path, None) == "production+222"
    listed = areas.read(tmp_path)
    assert [item["major"] for item in listed] == [14, 18]
    assert listed[0]["until"] == listed[1]["since"] == "2026-12-05T18:00:00+00:00"
    assert (tmp_path / areas.RECORD).stat().st_mode & 0o777 == 0o644  # the archive command's user reads it
    # A second upgrade: 18's area is closed, 19's opened; the first area keeps its name.
    areas.begin("production", tmp_path, old_system="222", old_major=18, new_system="333", new_major=19,
                at="2027-01-01T00:00:00+00:00")
    assert areas.all_areas("production", tmp_path) == ["production", "production+222", "production+333"]
    areas.take_back(tmp_path, old_system="222", new_system="333")
    assert areas.current("production", tmp_path) == "production+222"
    assert areas.read(tmp_path)[-1]["until"] is None
    areas.take_back(tmp_path, old_system="111", new_system="222")
    assert not (tmp_path / areas.RECORD).exists()
    assert areas.current("production", tmp_path) == "production"


def test_a_damaged_record_is_an_error_not_the_first_area(tmp_path: Path) -> None:
    (tmp_path / areas.RECORD).write_text('{"areas": "oops"}')
    with pytest.raises(ValueError, match="damaged"):
        areas.current("production", tmp_path)
    with pytest.raises(ValueError):
        areas.area_of("production", "../x")

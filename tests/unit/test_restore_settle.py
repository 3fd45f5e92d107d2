"""A laid-down backup reaches the disk before it moves into place, unless the environment runs with fsync off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cuisine_db.backup.physical_restore import durable, settle


@pytest.mark.parametrize(("value", "expected"), [(False, False), ("off", False), ("false", False), ("0", False),
                                                 (True, True), ("on", True), ("ON", True)])
def test_fsync_off_gives_durability_up(value: str | bool, expected: bool) -> None:
    assert durable({"fsync": value}) is expected


def test_without_an_fsync_setting_the_server_is_durable() -> None:
    assert durable({"port": 5432}) is True


def test_settle_syncs_laid_down_folders_and_skips_missing_ones(tmp_path: Path) -> None:
    laid = tmp_path / "data.laying"
    laid.mkdir()
    (laid / "PG_VERSION").write_text("18\n")
    settle([laid, tmp_path / "tablespaces.laying"])
    assert (laid / "PG_VERSION").read_text() == "18\n"


def test_settle_never_follows_a_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.symlink(target, tmp_path / "data.laying")
    with pytest.raises(OSError):
        settle([tmp_path / "data.laying"])

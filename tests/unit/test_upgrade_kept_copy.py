"""swap's hard-linked copy of the stopped old cluster, and the logical pre-flight's rows that need no server."""

from __future__ import annotations

import os
from pathlib import Path

from cuisine_db.upgrade.inplace import _link_tree
from cuisine_db.upgrade.logical_preflight import _capacity_row, _identity_row


def _cluster(root: Path) -> Path:
    data = root / "data"
    for folder in ("global", "base/5", "pg_wal", "pg_tblspc"):
        (data / folder).mkdir(parents=True)
    (data / "global" / "pg_control").write_bytes(b"control before")
    (data / "base" / "5" / "16384").write_bytes(b"rows")
    (data / "PG_VERSION").write_text("14\n")
    os.symlink("/nowhere/else", data / "pg_wal" / "archive_status_link")
    (data / "base").chmod(0o750)
    data.chmod(0o700)
    return data


def test_the_copy_shares_the_files_but_not_pg_control(tmp_path: Path) -> None:
    data = _cluster(tmp_path)
    copy = tmp_path / "kept" / "data"
    copy.parent.mkdir()
    _link_tree(data, copy)
    assert (copy / "base" / "5" / "16384").stat().st_ino == (data / "base" / "5" / "16384").stat().st_ino
    assert (copy / "global" / "pg_control").stat().st_ino != (data / "global" / "pg_control").stat().st_ino
    assert (copy / "global" / "pg_control").read_bytes() == b"control before"
    assert os.readlink(copy / "pg_wal" / "archive_status_link") == "/nowhere/else"
    assert (copy / "base").stat().st_mode & 0o777 == 0o750
    assert copy.stat().st_mode & 0o777 == 0o700
    assert (copy / "pg_tblspc").is_dir()


def test_what_pg_upgrade_swap_does_to_the_old_folder_leaves_the_copy_whole(tmp_path: Path) -> None:
    """Renames of the old directories and an in-place rewrite of pg_control do not reach the copy."""
    data = _cluster(tmp_path)
    copy = tmp_path / "kept" / "data"
    copy.parent.mkdir()
    _link_tree(data, copy)
    moved = tmp_path / "new" / "base"
    moved.mkdir(parents=True)
    (data / "base" / "5").rename(moved / "5")
    with (data / "global" / "pg_control").open("r+b") as control:
        control.write(b"control after!")
    (data / "global" / "pg_control").rename(data / "global" / "pg_control.old")
    assert (copy / "base" / "5" / "16384").read_bytes() == b"rows"
    assert (copy / "global" / "pg_control").read_bytes() == b"control before"


def test_identity_rows() -> None:
    assert _identity_row([], identity_full=False).status == "go"
    refused = _identity_row(["public.notes"], identity_full=False)
    assert refused.status == "no-go" and "public.notes" in refused.detail and "replica_identity_full" in refused.fix
    assert _identity_row(["public.notes"], identity_full=True).status == "note"


def test_capacity_needs_three_free_slots_and_senders() -> None:
    assert _capacity_row((10, 7, 10, 0)).status == "go"
    assert _capacity_row((10, 8, 10, 0)).status == "no-go"
    assert _capacity_row((10, 0, 10, 8)).status == "no-go"
    assert "max_wal_senders=10 (8 running)" in _capacity_row((10, 0, 10, 8)).detail

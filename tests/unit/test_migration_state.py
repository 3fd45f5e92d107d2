"""Comparing applied rows with files: applied, pending, drifted, missing, out of order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cuisine_db.migrations.files import parse
from cuisine_db.migrations.state import AppliedRow, compare


def migration(folder: Path, version: str, body: str = "SELECT 1;") -> Path:
    path = folder / f"{version}_m{version[-2:]}.sql"
    path.write_text(f"-- migrate:up\n{body}\n-- migrate:down\nSELECT 1;\n")
    return path


def row(version: str, checksum: str | None, seq: int | None) -> AppliedRow:
    return AppliedRow(version, "m", checksum, datetime(2025, 1, 1, tzinfo=UTC), "me", 1, seq)


def test_each_state_is_named(tmp_path: Path) -> None:
    a = parse(migration(tmp_path, "20250101000001"))
    b = parse(migration(tmp_path, "20250101000002"))
    c = parse(migration(tmp_path, "20250101000003"))
    states = compare([a, b, c], [row(a.version, a.checksum, 1), row(b.version, "0" * 64, 2),
                                 row("20250101000009", "x", 3)])
    assert [(s.version, s.state) for s in states] == [
        ("20250101000001", "applied"), ("20250101000002", "drifted"), ("20250101000003", "pending"),
        ("20250101000009", "missing")]
    assert states[2].out_of_order is True


def test_rows_written_by_dbmate_have_no_checksum_and_do_not_drift(tmp_path: Path) -> None:
    a = parse(migration(tmp_path, "20250101000001"))
    assert [s.state for s in compare([a], [row(a.version, None, None)])] == ["applied"]


def test_a_pending_migration_newer_than_all_applied_is_in_order(tmp_path: Path) -> None:
    a = parse(migration(tmp_path, "20250101000001"))
    b = parse(migration(tmp_path, "20250101000002"))
    states = compare([a, b], [row(a.version, a.checksum, 1)])
    assert states[1].state == "pending" and states[1].out_of_order is False


def test_rollback_takes_dbmate_order_and_stops_at_the_version(tmp_path: Path) -> None:
    from cuisine_db.migrations.runner import _rollback_targets

    files = [parse(migration(tmp_path, v)) for v in ("20250101000001", "20250101000002", "20250101000003")]
    # Applied 3 before 2 (a late merge): rollback still undoes the highest version first, as dbmate does.
    applied = [row("20250101000001", None, None), row("20250101000003", None, 2), row("20250101000002", None, 3)]
    assert [m.version for m in _rollback_targets(files, applied, 1, None)] == ["20250101000003"]
    assert [m.version for m in _rollback_targets(files, applied, None, "20250101000001")] == [
        "20250101000003", "20250101000002"]
    # A version whose file is gone bounds the rollback by version, never widens it to everything.
    gone = [row("20250101000000", None, 1), *applied]
    assert [m.version for m in _rollback_targets(files[1:], gone, None, "20250101000001")] == [
        "20250101000003", "20250101000002"]
    assert [m.version for m in _rollback_targets(files[1:], gone, None, "20250101000000")] == [
        "20250101000003", "20250101000002"]

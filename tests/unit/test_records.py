"""The records module without a server: atomic_write never follows a planted link, leaves no temporary file behind
and fsyncs the folder; typed records raise DamagedRecord naming the file instead of reading as absent."""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cuisine_db import records
from cuisine_db.errors import EXIT_FINDINGS


def test_atomic_write_replaces_the_file_with_its_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    records.atomic_write(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    records.atomic_write(target, "public", mode=0o644)
    assert target.read_text() == "public" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_link_planted_at_the_target_is_replaced_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    target = tmp_path / "state.json"
    target.symlink_to(victim)
    records.atomic_write(target, "mine")
    assert not target.is_symlink() and target.read_text() == "mine"
    assert victim.read_text() == "untouched"


def test_a_link_planted_at_the_temporary_name_is_refused_never_followed(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    planted = tmp_path / ".state.json.planted"
    planted.symlink_to(victim)
    monkeypatch.setattr(records, "_temporary_name", lambda name: planted.name)
    with pytest.raises(records.UnsafeFileError):
        records.atomic_write(tmp_path / "state.json", "mine")
    assert victim.read_text() == "untouched" and planted.is_symlink()
    assert not (tmp_path / "state.json").exists()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    records.atomic_write(target, "before")

    def broken(fd: int, data: bytes) -> None:
        os.write(fd, data[:2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(records, "write_all", broken)
    with pytest.raises(OSError, match="No space"):
        records.atomic_write(target, "after, never seen")
    assert target.read_text() == "before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_the_file_and_then_its_folder_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    records.atomic_write(tmp_path / "state.json", "durable")
    assert synced == ["file", "folder"]
    assert (tmp_path / "state.json").read_text() == "durable"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_root_gives_the_file_to_its_owner(tmp_path: Path) -> None:
    records.atomic_write(tmp_path / "pgbouncer.ini", "x", owner="nobody")
    assert (tmp_path / "pgbouncer.ini").stat().st_uid == pwd.getpwnam("nobody").pw_uid


def test_a_folder_at_the_target_or_a_linked_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state.json").mkdir()
    with pytest.raises(IsADirectoryError):
        records.atomic_write(tmp_path / "state.json", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linked").symlink_to(real)
    with pytest.raises(records.UnsafeFileError):
        records.atomic_write(tmp_path / "linked" / "key", "x", follow_folder=False)
    assert list(real.iterdir()) == []


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    count: int = 0


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    ok: bool
    who: str
    steps: tuple[Step, ...] = field(default_factory=tuple)
    note: str | None = None


def test_a_record_reads_back_as_written(tmp_path: Path) -> None:
    sample = Sample(datetime(2025, 3, 15, 1, 42, tzinfo=UTC), True, "ops@db1", (Step("a", 2),))
    path = tmp_path / "sample.json"
    records.save(path, sample)
    assert path.read_text().startswith('{\n  "at": "2025-03-15T01:42:00+00:00",')
    assert records.load(Sample, path) == sample
    assert records.load(Sample, tmp_path / "absent.json") is None


@pytest.mark.parametrize(("body", "why"), [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"ok": true, "who": "x"}', "at: Field required"),
    (b'{"at": "yesterday", "ok": true, "who": "x"}', "at: Input should be a valid datetime"),
    (b'{"at": "2025-03-15T01:42:00+00:00", "ok": true, "who": 7}', "who: Input should be a valid string"),
    (b'{"at": "2025-03-15T01:42:00+00:00", "ok": true, "who": "x", "steps": [{"count": 1}]}', "steps.0.name"),
])
def test_a_damaged_record_raises_naming_the_file(tmp_path: Path, body: bytes, why: str) -> None:
    path = tmp_path / "sample.json"
    path.write_bytes(body)
    with pytest.raises(records.DamagedRecord) as caught:
        records.load(Sample, path)
    assert caught.value.where == str(path) and why in caught.value.why
    assert str(path) in caught.value.message and caught.value.exit_code == EXIT_FINDINGS

"""Faults during backups: kill -9 at random moments, and a repository whose filesystem fills up."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from backup_fixtures import AgeKeys, BackupProject, make_backup_project, seeded_template
from conftest import CLI, Server

from cuisine_db.backup.manifest import MANIFEST


def pg_dumps_writing_to(folder: Path) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                line = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "pg_dump" in line and str(folder) in line:
                found.append(line)
    return found


def objects_written_without_manifest(backups: Path, before: set[str]) -> bool:
    """A backup begun since `before` has stored an object and not yet its manifest: the middle of a write."""
    with contextlib.suppress(OSError):
        for folder in backups.iterdir():
            if folder.name not in before:
                files = {entry.name for entry in folder.iterdir() if not entry.name.startswith(".")}  # not temp
                return bool(files) and MANIFEST not in files
    return False


@pytest.mark.parametrize("server", [14], indirect=True)
def test_kill_9_at_random_moments_never_leaves_a_backup_listed_as_complete(bproject: BackupProject) -> None:
    started = time.monotonic()
    bproject.backup("production", "logical")
    duration = time.monotonic() - started
    rng = random.Random(20250315)
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(bproject.config)}
    backups = bproject.root / "repository" / "backups"
    for trial in range(20):
        before = {folder.name for folder in backups.iterdir()}
        child = subprocess.Popen([*CLI, "backup", "create", "--env", "production", "--type", "logical"],
                                 cwd=bproject.root, env=environ, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        if trial % 4 == 0:
            # Every fourth kill lands once objects are stored but not the manifest, whatever the machine's load
            # makes of the random delays: the trials always include the middle of a write.
            deadline = time.monotonic() + 120
            while not objects_written_without_manifest(backups, before) and child.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.005)
        else:
            time.sleep(rng.uniform(0.1, duration * 1.1))
        child.send_signal(signal.SIGKILL)
        child.wait()
        # pg_dump dies with it (no orphan keeps writing).
        deadline = time.monotonic() + 30
        while pg_dumps_writing_to(bproject.root) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pg_dumps_writing_to(bproject.root)
    everything = bproject.backups("production", "--all")
    complete = [b for b in everything if b["complete"]]
    assert len(everything) > len(complete) >= 1, "the kills should have left some incomplete backups"
    for backup in complete:
        verified = bproject.cli("backup", "verify", backup["name"])
        assert verified.returncode == 0, (backup["name"], verified.stderr)
    incomplete = {b["name"] for b in everything if not b["complete"]}
    assert not incomplete & {b["name"] for b in bproject.backups("production")}
    name = bproject.backup("production", "logical")
    assert bproject.cli("backup", "verify", name).returncode == 0
    # The scratch folders of the killed runs were swept by the next run.
    assert [p.name for p in (bproject.root / ".cuisine" / "tmp").iterdir()] == []


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: a repository that fills up for real (ENOSPC), not a simulation."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


@pytest.mark.parametrize("server", [14], indirect=True)
def test_a_nearly_full_repository_fails_the_backup_clearly_and_keeps_earlier_ones(
        server: Server, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys,
        small_filesystem: Path) -> None:
    project = make_backup_project(server, tmp_path / "project", age_keys,
                                  template=seeded_template(server, tmp_path_factory))
    project.config.write_text(project.config.read_text().replace(project.repository, small_filesystem.as_uri()))
    first = project.backup("production", "tables", "--tables", "users,ingredients")
    filler = small_filesystem / ".filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
    filler.write_bytes(b"")  # give back all but the last ~1 MB of room
    filler.write_bytes(b"\0" * (os.statvfs(small_filesystem).f_bavail * os.statvfs(small_filesystem).f_frsize
                                - (1 << 20)))
    failed = project.cli("backup", "create", "--env", "production", "--type", "logical")
    lines = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert failed.returncode == 3, failed.stderr
    assert len(lines) == 1 and "no space left on device" in lines[0] and "earlier backups are intact" in lines[0]
    assert [b["name"] for b in project.backups("production", "--all")] == [first]
    assert project.cli("backup", "verify", first).returncode == 0
    leftovers = [p for p in (small_filesystem / "backups").rglob("*") if p.is_file() and p.name != ".filler"]
    assert all(p.parent.name == first for p in leftovers), leftovers

"""kill -9 during db-archive-data: while exporting, the moment the manifest exists, and in the middle of a
resumed deletion. After every kill each row is still in the table or in a complete archive; the run that follows
finishes the work, and then every row is in exactly one place."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from archive_support import archive_list, archived_lines, first_fields, ids
from backup_fixtures import BackupProject
from conftest import CLI

RUN = ("archive", "create", "--env", "production", "--table", "executions", "--older-than", "365d", "--yes")
# Small batches with a rest between them: the deletion lasts a few seconds, so a kill lands inside it.
SLOW = ("--batch-size", "10", "--pause", "50ms")


def start(project: BackupProject, *extra: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(project.config)}
    environ.pop("CUISINE_DB_ENV", None)
    return subprocess.Popen([*CLI, *RUN, *extra], cwd=project.root, env=environ, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def stop_when(child: subprocess.Popen[str], condition: Callable[[], bool], what: str) -> None:
    """Freeze the run (SIGSTOP) the moment the condition holds, so the kill lands exactly there."""
    deadline = time.monotonic() + 120
    while not condition():
        if child.poll() is not None:
            said = child.stderr.read() if child.stderr else ""
            pytest.fail(f"the run ended (exit {child.returncode}) before {what}: {said}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"no {what} within 120 s")
        time.sleep(0.002)
    child.send_signal(signal.SIGSTOP)


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL


def folders(project: BackupProject) -> dict[str, set[str]]:
    root = project.root / "repository" / "archives"
    if not root.is_dir():
        return {}
    return {folder.name: {p.name for p in folder.iterdir() if not p.name.startswith(".")}
            for folder in root.iterdir()}


def nothing_lost(project: BackupProject, original: list[int]) -> list[int]:
    """Every original row is in the table or in a complete archive; returns the table's ids."""
    remaining = ids(project, "production")
    archived = {i for lines in archived_lines(project).values() for i in first_fields(lines)}
    assert set(original) <= set(remaining) | archived, "a row is neither in the table nor in a complete archive"
    return remaining


@pytest.mark.parametrize("server", [14], indirect=True)
def test_kill_9_anywhere_in_an_archive_run_then_a_rerun_loses_and_duplicates_nothing(
        bproject: BackupProject) -> None:
    before = bproject.fingerprints("production", ("executions",))
    original = ids(bproject, "production")
    watcher = bproject.connect("production")

    def rows() -> int:
        row = watcher.execute("SELECT count(*) FROM executions").fetchone()
        return int(row[0]) if row else -1

    # 1. While exporting: the intent is written, the manifest is not. Nothing may have been deleted.
    child = start(bproject, *SLOW)
    stop_when(child, lambda: any("intent.json" in files for files in folders(bproject).values()), "an export")
    ((exporting, files),) = folders(bproject).items()
    kill(child)
    assert "manifest.json" not in files  # pg_dump and the objects come between the intent and the manifest
    assert bproject.fingerprints("production", ("executions",)) == before
    assert [(a["name"], a["complete"]) for a in archive_list(bproject, "production", "--all")] == [
        (exporting, False)]
    nothing_lost(bproject, original)

    # 2. The moment the manifest exists (the archive is complete and checked): the deletion is pending.
    child = start(bproject, *SLOW)
    stop_when(child, lambda: any("manifest.json" in files for files in folders(bproject).values()), "a manifest")
    kill(child)
    remaining = nothing_lost(bproject, original)
    (pending,) = [a for a in archive_list(bproject) if a["state"] == "deletion pending"]
    assert len(remaining) > len(original) - pending["rows"]
    # The interrupted export of trial 1 was cleared away first. Names have one-second resolution, so this run's own
    # archive may have taken the same name once it was free: then that folder is the complete, pending one.
    assert pending["name"] == exporting or not folders(bproject).get(exporting)

    # 3. The next run resumes that deletion; kill it in the middle of it.
    at_start = rows()
    child = start(bproject, *SLOW)
    stop_when(child, lambda: rows() <= at_start - 20, "the resumed deletion under way")
    kill(child)
    remaining = nothing_lost(bproject, original)
    assert len(original) - pending["rows"] < len(remaining) <= at_start - 20
    assert [a["name"] for a in archive_list(bproject) if a["state"] == "deletion pending"] == [pending["name"]]

    # 4. A run to the end: the pending archive is finished, the interrupted export is gone, nothing new is old.
    done = bproject.cli(*RUN, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    first = report["archives"][0]
    assert (first["name"], first["resumed"]) == (pending["name"], True)
    listed = archive_list(bproject, "production", "--all")
    assert all(a["complete"] and a["state"] == "deleted" for a in listed), listed
    archived = [i for lines in archived_lines(bproject).values() for i in first_fields(lines)]
    remaining = ids(bproject, "production")
    assert len(archived) + len(remaining) == len(original)
    assert sorted(archived + remaining) == original  # exactly one place each
    assert list(Path(bproject.root / ".cuisine" / "tmp").iterdir()) == []

    # Every archive back: the table is as it was.
    for archive in listed:
        back = bproject.cli("archive", "restore", "--env", "production", "--archive", archive["name"], "--yes")
        assert back.returncode == 0, back.stderr
    assert bproject.fingerprints("production", ("executions",)) == before
    watcher.close()

"""kill -9 during `wal push`, at random moments, into a folder and into the S3 test server: afterwards `wal fetch`
either says the segment is not archived (exit 1) or returns exactly the original bytes — never something else
it accepts — and PostgreSQL's retry of the push succeeds."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from backup_fixtures import BACKENDS, AgeKeys
from pitr_fixtures import make_wal_archive

from cuisine_db.backup.wal import wal_names

ATTEMPTS = 6
SIZE = 4 << 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_during_push_never_leaves_a_wrong_segment(backend: str, tmp_path: Path, age_keys: AgeKeys,
                                                         request: pytest.FixtureRequest) -> None:
    s3 = request.getfixturevalue("s3_server") if backend == "s3" else None
    archive = make_wal_archive(tmp_path / "wal", age_keys, backend=backend, s3=s3)
    rng = random.Random(9)
    outcomes, killed = [], 0
    for attempt in range(ATTEMPTS if backend == "file" else ATTEMPTS // 2):
        name = wal_names.segment_name(1, attempt + 1)
        # Half random (incompressible: long uploads), half repetitive, like real WAL.
        original = os.urandom(SIZE // 2) + bytes(rng.randrange(4)) * (SIZE // 2)
        archive.segment(name, original, ready=False)
        process = archive.popen("push", f"pg_wal/{name}")
        if backend == "file" and attempt == 0:
            # Once: exactly while the object is being written (its temporary file exists).
            deadline = time.monotonic() + 60
            while not any((archive.root / "repository").rglob(f".{name}-*.tmp-*")) and time.monotonic() < deadline:
                assert process.poll() is None, "the push ended before it could be caught writing"
                time.sleep(0.002)
        else:
            time.sleep(rng.uniform(0.05, 1.5))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            killed += 1
        process.wait(timeout=60)
        code, fetched = archive.fetch(name)
        assert code in (0, 1), f"wal fetch after a killed push exited {code}"
        if code == 0:
            assert fetched == original, "wal fetch accepted a segment that differs from the original"
        outcomes.append(code)
        retry = archive.run("push", f"pg_wal/{name}")  # what PostgreSQL does next
        assert retry.returncode == 0, retry.stderr
        assert archive.fetch(name) == (0, original)
    assert killed >= 1, "no push was caught running"

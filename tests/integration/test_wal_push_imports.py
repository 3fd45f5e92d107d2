"""The archive command's start-up stays lean (issues 15 and 22): a real server's 16 MB segment pushed the way
PostgreSQL runs `archive_command` (enable.archive_command: served.py under `python -S`) imports none of the modules
taken off that path (nor `site`, where the virtual environment makes that plain), and the stored copy fetches
back byte for byte (signed record, sha256 and size checked)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from backup_fixtures import AgeKeys
from conftest import Server
from pitr_fixtures import make_wal_archive, real_segments

from cuisine_db.backup.wal import enable, served

# Off the full push's path: python-zstandard's package __init__ (it imports `platform` only to pick the C backend
# that storage.pipeline loads directly), cryptography's public Python API (storage.signing signs through its Rust
# core), argparse (main.py parses its own arguments), mmap and threads (push.OnePass reads, hashes and compresses
# in one pass) and the thread pool with logging (only a batch needs it).
OFF_THE_PATH = frozenset({"platform", "zstandard", "cryptography.hazmat.primitives", "argparse", "mmap",
                          "threading", "concurrent.futures", "logging"})


def test_a_real_segments_push_keeps_the_slow_imports_off_the_archive_command(server: Server, tmp_path: Path,
                                                                             age_keys: AgeKeys) -> None:
    archive = make_wal_archive(tmp_path / "wal", age_keys)
    ((name, data),) = real_segments(server, 1)
    assert len(data) == 16 << 20
    archive.segment(name, data, ready=False)
    command = enable.archive_command(archive.settings, archive.settings.env("production"))
    argv = shlex.split(command.replace("%p", f"pg_wal/{name}"))
    pushed = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=archive.pg_wal.parent,
                            capture_output=True, text=True, check=False, timeout=120,
                            env={**os.environ, **archive.environ})
    assert pushed.returncode == 0, pushed.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in pushed.stderr.splitlines() if "|" in line}
    assert "cuisine_db.backup.wal.push" in imported, "the call must have stored the segment, not taken a shortcut"
    assert not imported & OFF_THE_PATH, sorted(imported & OFF_THE_PATH)
    if served._plain_paths(os.path.dirname(os.path.abspath(served.__file__))) is not None:
        # A virtual environment whose site-packages need no .pth file: sys.path is set without site's set-up.
        assert not imported & {"site", "_distutils_hack", "sitecustomize"}, imported
    assert archive.fetch(name) == (0, data)

"""A segment pushed ahead by a batch is answered from the ledger (issue 22): at once, without hashing, only while
it is the very file the batch stored (device, inode, size, modification and change times as the ledger noted them);
rewritten in place or replaced since, even with the same size or the same bytes, it is hashed again, and a content
that differs from what was stored is refused. Real segments of a real server, pushed as PostgreSQL runs
archive_command (enable.archive_command: served.py under `python -S`)."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import time
from pathlib import Path

from backup_fixtures import AgeKeys
from conftest import Server
from pitr_fixtures import make_wal_archive, real_segments

from cuisine_db.backup.wal import enable, push


def test_a_pushed_ahead_segment_is_answered_without_hashing_only_while_it_is_the_file_the_batch_stored(
        server: Server, tmp_path: Path, age_keys: AgeKeys) -> None:
    archive = make_wal_archive(tmp_path / "wal", age_keys)
    segments = real_segments(server, 6)
    for name, data in segments:
        archive.segment(name, data)
    names = [name for name, _ in segments]
    contents = dict(segments)
    assert len(set(contents.values())) == len(names) and all(len(data) == 16 << 20 for data in contents.values())
    # The batch notes an identity only for files whose times were settled before it opened them: wait until they are.
    deadline = time.monotonic() + 60
    while any(time.time_ns() - os.stat(archive.pg_wal / name).st_ctime_ns <= 2 * push.SETTLED_NS for name in names):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    command = enable.archive_command(archive.settings, archive.settings.env("production"))
    ledger = archive.root / ".cuisine" / "production" / "wal-spool" / push.LEDGER

    def pushed(name: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
        argv = shlex.split(command.replace("%p", f"pg_wal/{name}"))
        result = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=archive.pg_wal.parent,
                                capture_output=True, text=True, check=False, timeout=120,
                                env={**os.environ, **archive.environ})
        return result, {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}

    first, _ = pushed(names[0])
    assert first.returncode == 0 and f"pushed ahead {len(names) - 1}" in first.stderr, first.stderr
    for name in names[1:]:
        digest, *identity = (ledger / name).read_text().split()
        assert digest == hashlib.sha256(contents[name]).hexdigest()
        stat = os.stat(archive.pg_wal / name)
        assert identity == [str(stat.st_dev), str(stat.st_ino), str(stat.st_size), str(stat.st_mtime_ns),
                            str(stat.st_ctime_ns)], identity
    untouched, rewritten_same, rewritten_other, replaced_same, replaced_other = names[1:]

    # The very file the batch stored: answered from its identity, hashlib never imported.
    result, imported = pushed(untouched)
    assert result.returncode == 0 and "hashlib" not in imported and "cuisine_db" not in imported, result.stderr
    assert not (ledger / untouched).exists()

    # Rewritten in place with the same bytes: the times moved, so it is hashed (and matches).
    with open(archive.pg_wal / rewritten_same, "r+b") as handle:
        handle.write(contents[rewritten_same])
    result, imported = pushed(rewritten_same)
    assert result.returncode == 0 and "hashlib" in imported, result.stderr

    # Rewritten in place with another segment's bytes, same size, same inode: hashed, differs, refused.
    with open(archive.pg_wal / rewritten_other, "r+b") as handle:
        handle.write(contents[untouched])
    result, imported = pushed(rewritten_other)
    assert result.returncode != 0 and "REFUSED" in result.stderr and "hashlib" in imported, result.stderr

    # Replaced by a copy (another inode) with the same bytes: hashed, matches.
    copy = archive.pg_wal / f"{replaced_same}.copy"
    copy.write_bytes(contents[replaced_same])
    os.replace(copy, archive.pg_wal / replaced_same)
    result, imported = pushed(replaced_same)
    assert result.returncode == 0 and "hashlib" in imported, result.stderr

    # Replaced by a copy of another segment's bytes: hashed, differs, refused.
    copy.write_bytes(contents[untouched])
    os.replace(copy, archive.pg_wal / replaced_other)
    result, imported = pushed(replaced_other)
    assert result.returncode != 0 and "REFUSED" in result.stderr, result.stderr

    for name in names:  # what the archive holds is every segment as the server wrote it
        assert archive.fetch(name) == (0, contents[name])

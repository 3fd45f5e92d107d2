"""What `wal push` hashes and stores: a segment mapped, a small file read, and a file that changed meanwhile
refused before its object becomes visible."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cuisine_db.backup.wal.push import MAP_FROM, Contents
from cuisine_db.errors import FailedError


@pytest.mark.parametrize("size", [0, 300, MAP_FROM, 16 << 20])
def test_contents_hash_and_bytes_are_the_file_s(tmp_path: Path, size: int) -> None:
    path = tmp_path / "000000010000000000000001"
    body = os.urandom(size)
    path.write_bytes(body)
    with Contents(path) as contents:
        assert contents.size == size
        assert contents.sha256() == hashlib.sha256(body).hexdigest()
        assert bytes(contents.data) == body
        contents.unchanged()


def test_a_file_changed_while_being_archived_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "000000010000000000000001"
    path.write_bytes(os.urandom(MAP_FROM * 2))
    with Contents(path) as contents:
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))  # written again
        with pytest.raises(FailedError, match="changed while it was being archived"):
            contents.unchanged()

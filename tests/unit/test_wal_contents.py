"""What `wal push` hashes and stores: a segment mapped, a small file read, and a file that changed meanwhile
refused before its object becomes visible."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from cuisine_db.backup.wal.push import MAP_FROM, SETTLED_NS, Contents, identity
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


def test_the_ledgers_identity_is_noted_only_for_a_settled_file_still_as_it_was_opened(tmp_path: Path) -> None:
    """push.identity: device, inode, size and both times of the file as opened; none when its times are not older
    than the moment given (the clock before opening, less push.SETTLED_NS) or when it changed after opening."""
    path = tmp_path / "000000010000000000000001"
    path.write_bytes(os.urandom(MAP_FROM))
    with Contents(path) as contents:
        info = path.stat()
        newest = max(info.st_mtime_ns, info.st_ctime_ns)
        assert identity(contents, newest) is None  # changed within the tick before it was opened: not settled
        assert identity(contents, newest + 1) == (f"{info.st_dev} {info.st_ino} {info.st_size} {info.st_mtime_ns} "
                                                  f"{info.st_ctime_ns}")
        deadline = time.monotonic() + 60
        while time.time_ns() <= newest + SETTLED_NS:  # past the clock tick of its last change
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # only touched: the change time moves
        assert identity(contents, newest + 1) is None

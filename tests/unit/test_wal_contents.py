"""What `wal push` hashes and stores: a segment mapped, a small file read, a file read once, hashed (beside the
compression for a segment) and compressed, and a file that changed meanwhile refused before its object becomes
visible."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest
import zstandard

from cuisine_db.backup.wal.push import (
    HASH_BESIDE_FROM,
    MAP_FROM,
    PIECE,
    RING,
    SETTLED_NS,
    Contents,
    OnePass,
    _HashBeside,
    identity,
)
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


@pytest.mark.parametrize("size", [0, 31, PIECE - 1, PIECE, HASH_BESIDE_FROM - 1, HASH_BESIDE_FROM,
                                  PIECE * RING * 2 + 7, 16 << 20])
def test_one_pass_hash_frame_and_head_are_the_file_s(tmp_path: Path, size: int) -> None:
    """Read once, hashed on this thread or beside it (HASH_BESIDE_FROM and up), compressed: every byte counted once,
    in order, whichever thread hashed it."""
    path = tmp_path / "000000010000000000000001"
    body = os.urandom(size // 2) + bytes(size - size // 2)  # half incompressible, half zeros
    path.write_bytes(body)
    one = OnePass(path, 1)
    assert (one.size, one.sha256(), one.head) == (size, hashlib.sha256(body).hexdigest(), body[:32])
    assert zstandard.ZstdDecompressor().decompressobj().decompress(b"".join(one.frame)) == body
    one.unchanged()


def test_a_read_that_fails_beside_the_hashing_thread_raises_and_does_not_hang(tmp_path: Path) -> None:
    """A read error mid-file (here: reading a folder) reaches the caller, and the hashing thread is let go: the
    call returns instead of waiting forever for a piece that never comes."""
    finished: list[str] = []
    hasher = _HashBeside()
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(IsADirectoryError):
            hasher.read(fd)
    finally:
        os.close(fd)
        waiter = threading.Thread(target=lambda: finished.append(hasher.finish()), daemon=True)
        waiter.start()
        waiter.join(timeout=30)
    assert finished == [hashlib.sha256().hexdigest()], "finish() hung after a failed read"


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

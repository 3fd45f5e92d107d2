"""The stream pipeline on a local repository: round trip, tampering, wrong keys, and files read while written."""

from __future__ import annotations

import io
import os
import random
import threading
import time
from pathlib import Path

import pyrage
import pytest

from cuisine_db.errors import FailedError
from cuisine_db.storage import LocalRepository, ObjectExists
from cuisine_db.storage.growing import GrowingFile
from cuisine_db.storage.pipeline import (
    FetchedObject,
    IntegrityError,
    StoredObject,
    fetch,
    store,
    store_frame,
    zstd_compressor,
)

IDENTITY = pyrage.x25519.Identity.generate()
RECIPIENT = IDENTITY.to_public()


def copy_text(rows: int) -> bytes:
    rng = random.Random(5)
    body = "".join(f"{n}\tname {rng.random()}\t{'x' * rng.randint(0, 40)}\n" for n in range(rows))
    return body.encode() + b"\\.\n\n\n"


def test_round_trip_counts_rows_and_checks_everything(tmp_path: Path) -> None:
    repository = LocalRepository(tmp_path / "repo")
    data = copy_text(20_000)
    stored = store(repository, "backups/x/1.dat.zst.age", io.BytesIO(data), [RECIPIENT], count_rows=True)
    assert stored.rows == 20_000 and stored.plain_size == len(data) and stored.size < len(data)
    assert repository.stat("backups/x/1.dat.zst.age").size == stored.size  # type: ignore[union-attr]
    out = io.BytesIO()
    fetched = fetch(repository, stored.key, out, [IDENTITY], expect_size=stored.size, expect_sha256=stored.sha256,
                    count_rows=True)
    assert out.getvalue() == data and fetched.rows == 20_000
    # Nothing but the object: no temporary names left behind.
    assert sorted(p.name for p in (tmp_path / "repo" / "backups" / "x").iterdir()) == ["1.dat.zst.age"]


def fetch_frames(tmp_path: Path, *, decompress: bool = True,
                 count_rows: bool = False) -> tuple[LocalRepository, StoredObject, bytes, FetchedObject, bytes]:
    """A stored table file fetched with compressed=True: the repository, what was stored, the plain data, what
    the fetch returned and the frames it wrote."""
    repository = LocalRepository(tmp_path / "repo")
    data = copy_text(20_000)
    stored = store(repository, "backups/x/1.dat.zst.age", io.BytesIO(data), [RECIPIENT], count_rows=True)
    out = io.BytesIO()
    fetched = fetch(repository, stored.key, out, [IDENTITY], expect_size=stored.size, expect_sha256=stored.sha256,
                    compressed=True, decompress=decompress, count_rows=count_rows)
    return repository, stored, data, fetched, out.getvalue()


def test_a_compressed_fetch_hands_over_the_stored_zstd_frame_and_still_checks_and_counts_it(tmp_path: Path) -> None:
    import zstandard

    _, _, data, fetched, frame = fetch_frames(tmp_path, count_rows=True)
    assert len(frame) < len(data) and fetched.rows == 20_000 and fetched.plain_size == len(data)
    # One standard frame, with its checksum, that any zstd reader (pg_restore 16+, the zstd tool) decompresses.
    assert zstandard.get_frame_parameters(frame).has_checksum
    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(frame)).read() == data


def test_frames_handed_on_without_decompressing_are_still_held_to_the_stored_size_sha256_and_age(
        tmp_path: Path) -> None:
    import zstandard

    repository, stored, data, fetched, frame = fetch_frames(tmp_path, decompress=False)
    assert fetched.rows is None and fetched.plain_size == len(frame) < len(data)
    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(frame)).read() == data
    path = repository.path(stored.key)
    original = path.read_bytes()
    for damaged in (original[:-1] + bytes([original[-1] ^ 1]), original[: len(original) // 2]):
        path.write_bytes(damaged)
        with pytest.raises(IntegrityError) as caught:
            fetch(repository, stored.key, io.BytesIO(), [IDENTITY], expect_size=stored.size,
                  expect_sha256=stored.sha256, compressed=True, decompress=False)
        assert caught.value.key == stored.key


def test_any_flipped_byte_a_truncation_or_the_wrong_key_is_an_error_naming_the_object(tmp_path: Path) -> None:
    repository = LocalRepository(tmp_path / "repo")
    stored = store(repository, "backups/x/1.dat.zst.age", io.BytesIO(copy_text(5_000)), [RECIPIENT])
    path = repository.path(stored.key)
    original = path.read_bytes()
    for position in (0, 40, len(original) // 2, len(original) - 1):
        damaged = bytearray(original)
        damaged[position] ^= 0x40
        path.write_bytes(bytes(damaged))
        with pytest.raises(IntegrityError) as caught:
            fetch(repository, stored.key, None, [IDENTITY], expect_size=stored.size, expect_sha256=stored.sha256)
        assert caught.value.key == stored.key
    path.write_bytes(original[:-100])
    with pytest.raises(IntegrityError):
        fetch(repository, stored.key, None, [IDENTITY], expect_size=stored.size, expect_sha256=stored.sha256)
    path.write_bytes(original)
    with pytest.raises(IntegrityError, match="no matching key"):
        fetch(repository, stored.key, None, [pyrage.x25519.Identity.generate()])


def test_create_only_commit_refuses_an_existing_object(tmp_path: Path) -> None:
    repository = LocalRepository(tmp_path / "repo")
    repository.put_bytes("wal/1/seg", b"one", overwrite=False)
    with pytest.raises(ObjectExists):
        repository.put_bytes("wal/1/seg", b"two", overwrite=False)
    assert repository.get_bytes("wal/1/seg") == b"one"


def test_a_growing_file_is_streamed_as_written_and_its_space_given_back(tmp_path: Path) -> None:
    path = tmp_path / "grows.dat"
    path.write_bytes(b"")
    chunk = os.urandom(1 << 20)
    peak = [0]
    growing = GrowingFile(path, poll=0.005, punch_every=2 << 20)

    def writer() -> None:
        with path.open("ab") as handle:
            for count in range(1, 49):
                handle.write(chunk)
                handle.flush()
                peak[0] = max(peak[0], os.stat(path).st_blocks * 512)
                # Like pg_dump, the writer never waits; here it does, so the bound below holds on a busy machine.
                deadline = time.monotonic() + 60
                while growing.offset < (count - 4) << 20 and time.monotonic() < deadline:
                    time.sleep(0.001)
        growing.finish()

    thread = threading.Thread(target=writer)
    thread.start()
    repository = LocalRepository(tmp_path / "repo")
    stored = store(repository, "o.zst.age", growing, [RECIPIENT], level=1)
    thread.join()
    assert stored.plain_size == 48 << 20
    out = io.BytesIO()
    fetch(repository, "o.zst.age", out, [IDENTITY], expect_sha256=stored.sha256)
    assert out.getvalue() == chunk * 48
    # The reader punched holes behind itself: far less than the whole file was ever on disk.
    if growing.can_punch:
        assert peak[0] < (24 << 20), peak[0]
    growing.close()


def test_a_frame_stored_from_its_pieces_reads_back_whole_and_a_refusal_before_commit_leaves_nothing(
        tmp_path: Path) -> None:
    """store_frame (wal push): the zstd frame in the compressor's pieces, some empty, read by age one after the
    other; what fetch gets back is every byte, and before_commit raising leaves no object and no temporary file."""
    repository = LocalRepository(tmp_path / "repo")
    data = copy_text(30_000)
    compressor = zstd_compressor(1).compressobj()
    pieces = [compressor.compress(data[start:start + 100_000]) for start in range(0, len(data), 100_000)]
    pieces.append(compressor.flush())
    assert len(pieces) > 3 and any(not piece for piece in pieces)  # empty pieces are skipped, not taken for the end
    stored = store_frame(repository, "wal/x/1.zst.age", pieces, [RECIPIENT], plain_size=len(data), overwrite=False)
    assert stored.size == repository.stat(stored.key).size  # type: ignore[union-attr]
    out = io.BytesIO()
    fetched = fetch(repository, stored.key, out, [IDENTITY], expect_size=stored.size)
    assert out.getvalue() == data and fetched.plain_size == len(data)

    def refuse() -> None:
        raise IntegrityError("wal/x/2.zst.age", "changed while it was being archived")

    with pytest.raises(IntegrityError, match="changed while"):
        store_frame(repository, "wal/x/2.zst.age", pieces, [RECIPIENT], plain_size=len(data), before_commit=refuse)
    assert sorted(p.name for p in (tmp_path / "repo" / "wal" / "x").iterdir()) == ["1.zst.age"]


def test_a_source_that_fails_midway_raises_its_own_error_and_stores_nothing(tmp_path: Path) -> None:
    """The source's error (pg_dump's, say) travels through age as text: store() raises the original, not an
    'encryption failed', and nothing is left under the key."""
    repository = LocalRepository(tmp_path / "repo")

    class Failing:
        def __init__(self) -> None:
            self.given = 0

        def read(self, size: int = -1) -> bytes:
            if self.given >= 3 << 20:
                raise FailedError("pg_dump exited 1: out of shared memory")
            self.given += 1 << 20
            return os.urandom(1 << 20)

    with pytest.raises(FailedError, match="out of shared memory") as caught:
        store(repository, "backups/x/2.dat.zst.age", Failing(), [RECIPIENT])
    assert not isinstance(caught.value, IntegrityError)
    folder = tmp_path / "repo" / "backups" / "x"
    assert not folder.exists() or not list(folder.iterdir())


def test_a_stream_of_several_frames_reads_whole_and_one_cut_inside_its_last_frame_is_refused(tmp_path: Path) -> None:
    """A server-compressed object may hold several frames: all are decompressed, and a stream that stops inside
    its last one is refused even when the cut lies in the same piece age hands over as a whole first frame (a
    decompressor of the first frame alone reports that frame's end and drops the rest)."""
    import zstandard

    repository = LocalRepository(tmp_path / "repo")
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
    first, second = compressor.compress(copy_text(300)), compressor.compress(copy_text(3000))
    plain = copy_text(300) + copy_text(3000)
    assert len(first + second) < 60_000  # inside one of age's 64 KiB chunks
    whole = store(repository, "backups/x/whole.tar.zst.age", io.BytesIO(first + second), [RECIPIENT], compress=False)
    out = io.BytesIO()
    fetched = fetch(repository, whole.key, out, [IDENTITY], expect_size=whole.size, expect_sha256=whole.sha256)
    assert out.getvalue() == plain and fetched.plain_size == len(plain)
    for cut in (1, 4, len(second) // 2, len(second) - 4, len(second) - 1):
        cut_key = f"backups/x/cut{cut}.tar.zst.age"
        stored = store(repository, cut_key, io.BytesIO(first + second[:-cut]), [RECIPIENT], compress=False)
        with pytest.raises(IntegrityError, match=r"truncated: its zstd stream ends before its last frame does"):
            fetch(repository, stored.key, io.BytesIO(), [IDENTITY], expect_size=stored.size,
                  expect_sha256=stored.sha256, expect_plain_size=len(plain))
    garbage = store(repository, "backups/x/tail.tar.zst.age", io.BytesIO(first + b"not a frame"), [RECIPIENT],
                    compress=False)
    with pytest.raises(IntegrityError, match=r"tail\.tar\.zst\.age: decrypts to what is not a zstd stream"):
        fetch(repository, garbage.key, None, [IDENTITY])


class _FullDisk:
    def __init__(self, after: int) -> None:
        self.after, self.size = after, 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.after:
            raise OSError(28, "No space left on device")
        return len(data)


def test_decompressing_apart_gives_the_same_bytes_and_the_same_refusals_and_leaves_no_thread(tmp_path: Path) -> None:
    """fetch(apart=True), the lay-down's way: zstd on a thread of its own. Every outcome must be the one the
    fetch gives on one thread: the bytes and the row count, a flipped byte, a cut inside the last frame, bytes
    that are not zstd, more plain bytes than declared, and a destination that fails (a full disk)."""
    import zstandard

    repository = LocalRepository(tmp_path / "repo")
    data = copy_text(60_000)  # several of the zstd thread's pieces
    stored = store(repository, "backups/x/1.dat.zst.age", io.BytesIO(data), [RECIPIENT], count_rows=True)
    out = io.BytesIO()
    fetched = fetch(repository, stored.key, out, [IDENTITY], expect_size=stored.size, expect_sha256=stored.sha256,
                    count_rows=True, apart=True)
    assert out.getvalue() == data and fetched.rows == 60_000 and fetched.plain_size == len(data)

    with pytest.raises(IntegrityError, match="more than the manifest's 1000 bytes"):
        fetch(repository, stored.key, io.BytesIO(), [IDENTITY], expect_plain_size=1000, apart=True)
    with pytest.raises(OSError, match="No space left"):
        fetch(repository, stored.key, _FullDisk(after=300_000), [IDENTITY], apart=True)

    path = repository.path(stored.key)
    original = path.read_bytes()
    damaged = bytearray(original)
    damaged[len(original) // 2] ^= 0x40
    path.write_bytes(bytes(damaged))
    with pytest.raises(IntegrityError) as caught:
        fetch(repository, stored.key, io.BytesIO(), [IDENTITY], expect_size=stored.size,
              expect_sha256=stored.sha256, apart=True)
    assert caught.value.key == stored.key

    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
    frame = compressor.compress(copy_text(3000))
    cut = store(repository, "backups/x/cut.tar.zst.age", io.BytesIO(frame[:-5]), [RECIPIENT], compress=False)
    with pytest.raises(IntegrityError, match=r"truncated: its zstd stream ends before its last frame does"):
        fetch(repository, cut.key, io.BytesIO(), [IDENTITY], apart=True)
    garbage = store(repository, "backups/x/tail.tar.zst.age", io.BytesIO(frame + b"not a frame"), [RECIPIENT],
                    compress=False)
    with pytest.raises(IntegrityError, match=r"decrypts to what is not a zstd stream"):
        fetch(repository, garbage.key, None, [IDENTITY], apart=True)
    time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("zstd-")]

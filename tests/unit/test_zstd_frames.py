"""The zstd frame walker on real streams from python-zstandard: whole streams pass, every truncation and a damaged
block header is refused, and no byte is decompressed to learn it."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pyrage
import pytest
import zstandard

from cuisine_db.storage.zstd_frames import BLOCK_SIZE_MAX, FrameWalker, ZstdFormatError


def _plain(size: int, seed: int) -> bytes:
    """Text-like bytes that compress about 3:1, with a run of zeros (RLE blocks) and a random stretch (raw blocks)."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(4000)]
    text = b" ".join(rng.choices(words, k=size // 5))[:size]
    return text[: len(text) // 2] + bytes(200_000) + rng.randbytes(100_000) + text[len(text) // 2:]


def _frames(checksum: bool, count: int, size: int = 600_000, streamed: bool = False) -> list[bytes]:
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=checksum)
    frames = []
    for seed in range(count):
        data = _plain(size, seed)
        if streamed:  # no content size in the header: a window descriptor instead of a single segment
            obj = compressor.compressobj()
            frames.append(obj.compress(data) + obj.flush())
        else:
            frames.append(compressor.compress(data))
    return frames


STREAMS = {
    "one frame, checksum": _frames(True, 1),
    "one frame, no checksum": _frames(False, 1),
    "three frames, checksum, streamed": _frames(True, 3, 300_000, streamed=True),
    "two frames and a skippable one": [_frames(False, 1, 300_000)[0], struct.pack("<II", 0x184D2A5E, 7) + b"comment",
                                       _frames(True, 1, 200_000, streamed=True)[0]],
}


def _walk(data: bytes, pieces: int = 1, seed: int = 0) -> FrameWalker:
    walker = FrameWalker()
    cuts = sorted(random.Random(seed).sample(range(1, len(data)), pieces - 1)) if pieces > 1 and len(data) > pieces \
        else []
    start = 0
    for cut in [*cuts, len(data)]:
        walker.feed(memoryview(data)[start:cut])
        start = cut
    return walker


def _block_starts(data: bytes) -> list[int]:
    """Where each block header starts: fed one byte at a time, the walker counts a block when its third header byte
    arrives."""
    walker = FrameWalker()
    starts = []
    for offset in range(len(data)):
        before = walker.blocks
        walker.feed(data[offset:offset + 1])
        if walker.blocks != before:
            starts.append(offset - 2)
    return starts


@pytest.mark.parametrize("name", list(STREAMS))
def test_whole_streams_pass_in_any_pieces(name: str) -> None:
    frames = STREAMS[name]
    data = b"".join(frames)
    zstd_frames = sum(1 for frame in frames if frame[:4] == b"\x28\xb5\x2f\xfd")
    for pieces in (1, 2, 7, 1000):
        walker = _walk(data, pieces, seed=pieces)
        assert walker.complete, (name, pieces)
        assert walker.frames == zstd_frames
        assert walker.size == len(data)
    # The streams really have many blocks of every kind the compressor makes, and decompress whole.
    assert _walk(data).blocks >= 4 * zstd_frames
    assert len(zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(data)) > 0


@pytest.mark.parametrize("name", list(STREAMS))
def test_every_truncation_is_refused(name: str) -> None:
    data = b"".join(STREAMS[name])
    frame_ends = set()
    end = 0
    for frame in STREAMS[name]:
        end += len(frame)
        frame_ends.add(end)
    # Byte by byte: complete exactly at the end of a frame that is not skippable-only, never anywhere else.
    walker = FrameWalker()
    complete_at = []
    for offset in range(len(data)):
        walker.feed(data[offset:offset + 1])
        if walker.complete:
            complete_at.append(offset + 1)
    assert set(complete_at) <= frame_ends
    assert complete_at[-1] == len(data)
    starts = _block_starts(data)
    assert len(starts) >= 6
    for start in starts:
        for cut in (start, start + 1, start + 3, start + 4, (start + 3 + min(len(data), start + 4000)) // 2):
            if cut in frame_ends or cut >= len(data):
                continue
            for pieces in (1, 3):
                walker = _walk(data[:cut], pieces, seed=cut)
                assert not walker.complete, (start, cut)
                assert walker.why_incomplete().startswith("ends before its last frame does")


@pytest.mark.parametrize("name", list(STREAMS))
def test_a_reserved_block_type_is_refused(name: str) -> None:
    data = b"".join(STREAMS[name])
    for start in _block_starts(data)[::3]:
        damaged = bytearray(data)
        damaged[start] |= 0b110  # block type 3: reserved
        with pytest.raises(ZstdFormatError, match="reserved type"):
            _walk(bytes(damaged), 2, seed=start)


def test_a_block_larger_than_the_format_allows_is_refused() -> None:
    data = STREAMS["one frame, checksum"][0]
    start = _block_starts(data)[1]
    header = int.from_bytes(data[start:start + 3], "little")
    too_big = ((BLOCK_SIZE_MAX + 1) << 3) | (header & 0b111)
    damaged = data[:start] + too_big.to_bytes(3, "little") + data[start + 3:]
    with pytest.raises(ZstdFormatError, match="more than the"):
        _walk(damaged)


def test_a_block_larger_than_a_small_frame_window_is_refused() -> None:
    frame = zstandard.ZstdCompressor(level=3).compress(b"x" * 1000)  # single segment: window = 1000 bytes
    walker = FrameWalker()
    walker.feed(frame)
    assert walker.complete
    start = zstandard.frame_header_size(frame)
    damaged = frame[:start] + ((2000 << 3) | 0b011).to_bytes(3, "little") + frame[start + 3:]  # RLE of 2000 bytes
    with pytest.raises(ZstdFormatError, match="more than the 1000"):
        _walk(damaged)


@pytest.mark.parametrize("data", [b"", b"plain text, no zstd here", b"\x1f\x8b\x08\x00" + bytes(40),
                                  struct.pack("<II", 0x184D2A50, 3) + b"abc"])
def test_what_is_not_a_zstd_stream(data: bytes) -> None:
    walker = FrameWalker()
    try:
        walker.feed(data)
    except ZstdFormatError as exc:
        assert "is not a zstd stream" in exc.problem
        return
    assert not walker.complete
    assert walker.why_incomplete() in ("is empty", "holds no zstd frame")


def test_the_reserved_header_bit_is_refused() -> None:
    frame = bytearray(STREAMS["one frame, checksum"][0])
    frame[4] |= 0x08
    with pytest.raises(ZstdFormatError, match="reserved header bit"):
        _walk(bytes(frame))


def test_garbage_after_the_last_frame_is_refused() -> None:
    with pytest.raises(ZstdFormatError, match="no frame magic number where frame 2"):
        _walk(STREAMS["one frame, checksum"][0] + b"tail")


@pytest.mark.parametrize(("cut", "words"), [(0, None), (5, "ends before its zstd stream does"),
                                            (-1, "not a zstd stream")])
def test_a_server_stream_that_is_not_whole_fails_the_backup_and_a_whole_one_passes(tmp_path: Path, cut: int,
                                                                                   words: str | None) -> None:
    """physical.py's reader of pg_basebackup's base.tar.zst: stored through the pipeline as it is, then checked."""
    from cuisine_db.backup.physical import _Walked
    from cuisine_db.errors import FailedError
    from cuisine_db.storage import LocalRepository
    from cuisine_db.storage.growing import GrowingFile
    from cuisine_db.storage.pipeline import store

    frame = STREAMS["one frame, checksum"][0]
    data = b"not zstd" + frame if cut < 0 else frame[:len(frame) - cut]
    (tmp_path / "base.tar.zst").write_bytes(data)
    growing = GrowingFile(tmp_path / "base.tar.zst")
    growing.finish()
    walked = _Walked(growing, "base.tar.zst")
    recipient = pyrage.x25519.Identity.generate().to_public()
    try:
        if words is None:
            stored = store(LocalRepository(tmp_path / "repo"), "b/base.tar.zst.age", walked, [recipient],
                           compress=False)
            walked.check()
            assert stored.plain_size == len(data)  # the stream's own bytes: never decompressed
            return
        with pytest.raises(FailedError, match=f"pg_basebackup's base.tar.zst .*{words}"):
            store(LocalRepository(tmp_path / "repo"), "b/base.tar.zst.age", walked, [recipient], compress=False)
            walked.check()
    finally:
        growing.close()

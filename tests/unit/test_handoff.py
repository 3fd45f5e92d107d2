"""The lay-down's second thread: everything arrives in order, a failure on either side stops both, nothing hangs."""

from __future__ import annotations

import threading
import time

import pytest

from cuisine_db.storage.handoff import Handoff


class Sink:
    def __init__(self, fail_at: int | None = None, pause: float = 0.0) -> None:
        self.chunks: list[bytes] = []
        self.fail_at = fail_at
        self.pause = pause
        self.thread = ""

    def write(self, data: bytes) -> None:
        self.thread = threading.current_thread().name
        time.sleep(self.pause)
        if self.fail_at is not None and len(self.chunks) == self.fail_at:
            raise ValueError(f"refused chunk {self.fail_at}")
        self.chunks.append(data)


def test_every_chunk_arrives_in_order_on_another_thread_and_views_are_copied() -> None:
    sink = Sink()
    buffer = bytearray(b"a" * 4)
    with Handoff(sink, depth=2, name="far") as handoff:
        for n in range(50):
            buffer[:] = bytes([65 + n % 26]) * 4
            assert handoff.write(memoryview(buffer)) == 4
    assert sink.chunks == [bytes([65 + n % 26]) * 4 for n in range(50)]
    assert sink.thread == "far"


def test_a_far_side_failure_is_raised_by_the_next_write_and_by_the_exit() -> None:
    sink = Sink(fail_at=3)
    handoff = Handoff(sink, depth=1)
    with pytest.raises(ValueError, match="refused chunk 3"):
        for n in range(1000):  # the queue is drained after the failure, so the writer never blocks for good
            handoff.write(str(n).encode())
    with pytest.raises(ValueError, match="refused chunk 3"):
        handoff.finish()
    assert len(sink.chunks) == 3
    with pytest.raises(ValueError, match="refused chunk 0"), Handoff(Sink(fail_at=0)) as failing:
        failing.write(b"x")  # the failure may come after the last write: the exit raises it


def test_a_near_side_failure_stops_the_far_thread_and_is_the_one_raised() -> None:
    sink = Sink(pause=0.01)
    with pytest.raises(KeyError), Handoff(sink, depth=2, name="far-stopped") as handoff:
        handoff.write(b"1")
        handoff.write(b"2")
        raise KeyError("the fetch failed")
    assert not any(t.name == "far-stopped" for t in threading.enumerate())
    assert sink.chunks == [b"1", b"2"]


def test_the_queue_is_bounded() -> None:
    sink = Sink(pause=0.05)
    handoff = Handoff(sink, depth=2)
    started = time.monotonic()
    for _ in range(6):
        handoff.write(b"x")
    handoff.finish()
    assert time.monotonic() - started >= 0.15  # six writes into two places wait for the slow side
    assert len(sink.chunks) == 6


def test_small_writes_cross_in_batches_and_the_rest_at_the_finish() -> None:
    sink = Sink()
    buffer = bytearray(10)
    with Handoff(sink, depth=4, batch=64) as handoff:
        for n in range(25):  # 250 bytes in views of one reused buffer
            buffer[:] = bytes([48 + n % 10]) * 10
            handoff.write(memoryview(buffer))
        handoff.write(b"L" * 100)  # gathered too: something is waiting, so the order holds
    assert b"".join(sink.chunks) == b"".join(bytes([48 + n % 10]) * 10 for n in range(25)) + b"L" * 100
    assert [len(c) for c in sink.chunks] == [70, 70, 70, 140]  # three batches, then the rest with the large write
    big = Sink()
    with Handoff(big, batch=64) as handoff:
        handoff.write(b"B" * 100)  # nothing gathered: a large write crosses as it is
    assert big.chunks == [b"B" * 100]

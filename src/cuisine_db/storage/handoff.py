"""A sink that passes what it is given on to another sink on a thread of its own, through a bounded queue.

The lay-down of a physical backup (laydown.py) uses two, so that its base.tar, one object, is not one thread's
work: read, sha256 and age on the thread that fetches; zstd on a second (pipeline.fetch(apart=True)); checking
members and writing files on a third. hashlib and zstd release the GIL, and the writes are system
calls, so the three overlap. Sampled on one thread, zstd was 39% of the lay-down, age and reading with sha256 28%,
the rest (writing files, checking members) 33%. On the benchmark's two cores, which the WAL prefetcher shares, the
scale-40 lay-down took 6.54 s with one handoff against 7.01 s without (stop 21), and 5.55 s with both against
6.24 s with one (stop 22, medians of four alternating runs; docs/benchmarks.md). On more cores each stage has one.

`batch` gathers small writes (age hands over 8 KiB at a time) into pieces of at least that many bytes before
they cross, so the queue's lock and the thread switch are paid per piece, not per write.

The first error on the far side is raised by the next write() and again by finish(); after it, what arrives is
dropped, so the near side never blocks on a queue nobody reads. An error on the near side still stops the far
thread (the context manager's exit), without hiding that error.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType
from typing import Any

DEPTH = 16  # chunks in flight: a fetch writes what zstd gives back at a time (at most a few MB each)
_END = None


class Handoff:
    def __init__(self, sink: Any, *, depth: int = DEPTH, name: str = "handoff", batch: int = 0) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self.batch = batch
        self._gathered = bytearray()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not _END:
            if self.error is not None:
                continue  # drained, never written: the near side learns of the error at its next write
            try:
                self.sink.write(chunk)
            except BaseException as exc:
                self.error = exc

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.error is not None:
            raise self.error
        if self.batch and (self._gathered or len(data) < self.batch):
            self._gathered += data  # a copy, so a view of a buffer the caller reuses is safe
            if len(self._gathered) >= self.batch:
                self._queue.put(bytes(self._gathered))
                self._gathered.clear()
        else:
            self._queue.put(bytes(data))  # a copy only where the caller hands a view of a buffer it reuses
        return len(data)

    def flush(self) -> None:
        """Completeness is finish()'s to say."""

    def finish(self) -> None:
        """Wait until the far side has written everything; raise its error if it had one."""
        if self._gathered and self.error is None and self._thread.is_alive():
            self._queue.put(bytes(self._gathered))
            self._gathered.clear()
        self._stop()
        if self.error is not None:
            raise self.error

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()

    def __enter__(self) -> Handoff:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.finish()
        else:
            self._stop()

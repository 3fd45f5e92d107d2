"""A sink that passes what it is given on to another sink on a thread of its own, through a bounded queue.

A fetch runs read, sha256, age and zstd in the thread that calls it; what it writes (the plain bytes) can then be
checked and written to files on a second core while the next chunk decrypts and decompresses. hashlib, age and
zstd release the GIL, and the writes are system calls, so the two sides overlap. Used by the lay-down of a physical
backup (laydown.py), whose base.tar is one object on one thread otherwise: sampled, about 70% of that thread's time
went to the fetch side and 30% to checking members and writing files. On the benchmark's two cores, which the WAL
prefetcher shares during the lay-down, the scale-40 lay-down took 6.54 s against 7.01 s (medians of three
alternating runs, noisy); on more cores the two sides have a core each (docs/benchmarks.md, stop 21).

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

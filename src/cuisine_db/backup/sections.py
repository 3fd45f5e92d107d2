"""A logical restore as pg_restore's three sections, the data spread by size over parallel pg_restore runs.

One `pg_restore --jobs=N` of a directory archive loads the largest tables first: it takes each data file's
size from stat(). Served from named pipes, every file has size 0 and the order falls back to dump ids, so
the largest table may start last and the whole restore waits for it (measured: a third of the pg_restore
phase lost at seed scale 10). So the restore runs the sections `pg_restore --section` documents, one after
the other: pre-data (one session), data (`jobs` pg_restore runs at once, each with a --use-list of data items,
largest first onto the least loaded run, sizes from the manifest), post-data (`--jobs`: indexes and
constraints in parallel, as a single run builds them).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cuisine_db.backup.toc import TocEntry
from cuisine_db.postgres.runner import ToolError, spawn


def balance(sizes: Iterable[tuple[int, int]], runs: int) -> list[list[int]]:
    """(size, dump id) pairs spread over at most `runs` lists: largest first, each onto the least loaded list
    (longest processing time first: within 4/3 of the best spread, and the largest item starts at once)."""
    loads = [0] * max(1, runs)
    lists: list[list[int]] = [[] for _ in loads]
    for size, dump_id in sorted(sizes, key=lambda item: (-item[0], item[1])):
        least = loads.index(min(loads))
        loads[least] += size
        lists[least].append(dump_id)
    return [items for items in lists if items]


def data_sizes(entries: Iterable[TocEntry], files: Mapping[str, int]) -> list[tuple[int, int]]:
    """Each data item's plain size: its `<dump id>.dat` file's; large objects share their files' total."""
    items = list(entries)
    blobs = [entry for entry in items if entry.kind == "BLOBS"]
    blob_bytes = sum(size for file, size in files.items() if file.startswith("blob"))
    share = blob_bytes // len(blobs) if blobs else 0
    return [(share if entry.kind == "BLOBS" else files.get(f"{entry.dump_id}.dat", 0), entry.dump_id)
            for entry in items]


class Sections:
    """Runs pre-data, data and post-data one after the other into `database`; `kill()`, from any thread, stops
    the section running and the ones after it."""

    def __init__(self, program: Path, folder: Path, work: Path, *, database: str, flags: Sequence[str],
                 jobs: int, environ: Mapping[str, str]) -> None:
        self.program = program
        self.folder = folder
        self.work = work
        self.common: list[str | Path] = [program, "--exit-on-error", *flags, f"--dbname={database}"]
        self.jobs = jobs
        self.environ = dict(environ)
        self.running: list[subprocess.Popen[bytes]] = []
        self.killed = threading.Event()
        self.lock = threading.Lock()

    def kill(self) -> None:
        with self.lock:
            self.killed.set()
            for process in self.running:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()

    def run(self, data_lists: Sequence[Sequence[int]]) -> None:
        """Restore everything; call from the main thread (pg_restore dies with the thread that started it)."""
        lists = []
        for number, items in enumerate(data_lists):
            path = self.work / f"data-{number}.list"
            path.write_text("".join(f"{dump_id};\n" for dump_id in items))
            lists.append(path)
        self._section("pre-data", [[*self.common, "--section=pre-data", self.folder]])
        self._section("data", [[*self.common, "--section=data", f"--use-list={path}", self.folder]
                               for path in lists])
        self._section("post-data", [[*self.common, "--section=post-data", f"--jobs={self.jobs}", self.folder]])

    def _section(self, name: str, argvs: list[list[str | Path]]) -> None:
        logs = [self.work / f"pg_restore-{name}-{number}.log" for number in range(len(argvs))]
        with contextlib.ExitStack() as stack:
            outputs = [stack.enter_context(log.open("wb")) for log in logs]
            with self.lock:
                if self.killed.is_set():
                    return
                self.running = [spawn(argv, env=self.environ, stderr=output) for argv, output in zip(argvs, outputs,
                                                                                                    strict=True)]
            try:
                # The first run to fail stops the others: its error is the one to report.
                while any(process.poll() is None for process in self.running) and \
                        all(process.returncode in (None, 0) for process in self.running):
                    time.sleep(0.05)
            finally:
                for process in self.running:
                    if process.poll() is None:
                        process.kill()
                    process.wait()
        if self.killed.is_set():
            return
        failed = [(process, log) for process, log in zip(self.running, logs, strict=True) if process.returncode]
        # A run that exited with an error comes before one killed because of it.
        for process, log in sorted(failed, key=lambda pair: pair[0].returncode < 0):
            raise ToolError("pg_restore", process.returncode, log.read_text(errors="replace"))

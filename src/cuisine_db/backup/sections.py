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
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def post_data_may_start(lists: Mapping[str, Sequence[int]], exited: Mapping[str, int | None],
                        loading: Callable[[int], bool]) -> bool:
    """Post-data may start when every data run has exited cleanly, or all but one whose only item is loading."""
    left = [name for name in lists if exited.get(name) is None]
    if any(exited.get(name) != 0 for name in lists if name not in left):
        return False
    return not left or (len(left) == 1 and len(lists[left[0]]) == 1 and loading(lists[left[0]][0]))


class Sections:
    """Runs pre-data, data and post-data into `database`; `kill()`, from any thread, stops the runs and whatever
    would follow them.

    Post-data starts as soon as every data run is done but one that is loading its only table (`loading(dump
    id)`: its file is being read, so its COPY has begun and holds the table's lock): the other runs' indexes and
    constraints are built meanwhile, as one pg_restore would, and whatever needs that table waits for its lock,
    that is for the COPY to commit, then sees all of its rows. A table not begun yet holds no lock, so post-data
    never starts before every data run is past that point."""

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

    def run(self, data_lists: Sequence[Sequence[int]], loading: Callable[[int], bool] = lambda _: False,
            after_pre_data: Callable[[], None] = lambda: None) -> None:
        """Restore everything; call from the main thread (pg_restore dies with the thread that started it).
        `after_pre_data` runs once the tables exist and before any row is loaded."""
        paths = []
        for number, items in enumerate(data_lists):
            path = self.work / f"data-{number}.list"
            path.write_text("".join(f"{dump_id};\n" for dump_id in items))
            paths.append(path)
        post_data = [*self.common, "--section=post-data", f"--jobs={self.jobs}", self.folder]
        self._stage({"pre-data": [*self.common, "--section=pre-data", self.folder]})
        if self.killed.is_set():
            return
        after_pre_data()
        data = {f"data-{number}": [*self.common, "--section=data", f"--use-list={path}", self.folder]
                for number, path in enumerate(paths)}
        lists = {f"data-{number}": list(items) for number, items in enumerate(data_lists)}
        self._stage(data, then=("post-data", post_data),
                    when=lambda exited: post_data_may_start(lists, exited, loading))

    def _stage(self, argvs: Mapping[str, list[str | Path]], *, then: tuple[str, list[str | Path]] | None = None,
               when: Callable[[Mapping[str, int | None]], bool] = lambda _: True) -> None:
        """Run `argvs` at once and, once `when` holds for their exit codes so far, `then`; wait for all of them.
        The first run to fail stops the others: its error is the one reported."""
        processes: dict[str, subprocess.Popen[bytes]] = {}
        with contextlib.ExitStack() as stack:

            def start(name: str, argv: list[str | Path]) -> None:
                output = stack.enter_context((self.work / f"pg_restore-{name}.log").open("wb"))
                with self.lock:
                    if not self.killed.is_set():
                        processes[name] = spawn(argv, env=self.environ, stderr=output)
                        self.running = list(processes.values())

            for name, argv in argvs.items():
                start(name, argv)
            try:
                while not self.killed.is_set():
                    exited = {name: process.poll() for name, process in processes.items()}
                    if any(code for code in exited.values()):
                        break
                    if then is not None and then[0] not in processes and when(exited):
                        start(*then)
                        continue
                    if all(code is not None for code in exited.values()) and (then is None or then[0] in processes):
                        break
                    time.sleep(0.05)
            finally:
                for process in processes.values():
                    if process.poll() is None:
                        process.kill()
                    process.wait()
        if self.killed.is_set():
            return
        failed = [name for name, process in processes.items() if process.returncode]
        # A run that exited with an error comes before one killed because of it.
        for name in sorted(failed, key=lambda name: processes[name].returncode < 0):
            log = self.work / f"pg_restore-{name}.log"
            raise ToolError("pg_restore", processes[name].returncode, log.read_text(errors="replace"))

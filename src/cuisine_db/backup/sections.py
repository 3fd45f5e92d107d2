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
from typing import NamedTuple

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


SKIP: list[str | Path] = []  # a follower with nothing to run


class Split(NamedTuple):
    """Post-data while one table loads: `first` may run meanwhile, `later` once it is loaded; `later` needs
    the entries of `first` in `needed` (the primary keys its foreign keys reference, say)."""

    first: list[int]
    later: list[int]
    needed: frozenset[int]
    settled: frozenset[tuple[str, str]] = frozenset()  # tables whose post-data is all in `first`, unused by `later`


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

    Post-data may start as soon as every data run is done but one that is loading its only table (`loading(dump
    id)`: its file is being read, so its COPY has begun): a first post-data run then builds the indexes and
    constraints of the tables already loaded, as one pg_restore would meanwhile, and takes only the entries
    that do not depend on the loading table (`split`, from the archive's own dependencies: its indexes,
    constraints, the foreign keys that reference it, and every materialized view's data, whose refresh would
    read the table without waiting for its COPY). The rest runs once that table is loaded and what it needs of
    the first run exists (the first run may still be finishing the rest of its own): no post-data worker sits
    waiting on the loading table's lock while other entries are ready (with one post-data run, both workers
    were seen blocked on it for 1.7 s at seed scale 30). A table not begun yet holds no lock, so post-data
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
            after_pre_data: Callable[[], None] = lambda: None,
            split: Callable[[int], Split] | None = None, done: Callable[[frozenset[int]], bool] = lambda _: False,
            early_done: Callable[[Split], None] = lambda _: None) -> None:
        """Restore everything; call from the main thread (pg_restore dies with the thread that started it).
        `after_pre_data` runs once the tables exist and before any row is loaded. `split(data dump id)` gives the
        post-data entries that do not depend on that data item's table, and the others: with it, post-data may
        start early (see the class), in two runs, the second once the last table is loaded and what it needs of the
        first is done (`done(dump ids)`: those entries exist in the database; or the first run exited).
        `early_done(split)` runs when that first run has finished."""
        paths = [self._list(f"data-{number}", items) for number, items in enumerate(data_lists)]
        self._stage({"pre-data": [*self.common, "--section=pre-data", self.folder]})
        if self.killed.is_set():
            return
        after_pre_data()
        data = {f"data-{number}": [*self.common, "--section=data", f"--use-list={path}", self.folder]
                for number, path in enumerate(paths)}
        lists = {f"data-{number}": list(items) for number, items in enumerate(data_lists)}
        planned: list[Split] = []

        def post_data(name: str, entries: list[int] | None, jobs: int) -> list[str | Path]:
            chosen = [] if entries is None else [f"--use-list={self._list(name, entries)}"]
            return [*self.common, "--section=post-data", f"--jobs={jobs}", *chosen, self.folder]

        def early(exited: Mapping[str, int | None]) -> list[str | Path] | None:
            """While the last table loads: the post-data entries that do not depend on it, on the jobs the data
            runs no longer use (more would take CPU from that table's COPY, the longest path)."""
            left = [name for name in lists if exited.get(name) is None]
            if not left or split is None:
                return SKIP
            if not post_data_may_start(lists, exited, loading):
                return None
            plan = split(lists[left[0]][0])
            if not plan.first:
                return SKIP
            planned.append(plan)
            return post_data("post-data-early", plan.first, max(1, self.jobs - len(left)))

        def late(exited: Mapping[str, int | None]) -> list[str | Path] | None:
            """The rest of post-data (all of it when nothing started early), once every table is loaded and what
            it needs of the early run is done (the early run may still be finishing the rest of its own)."""
            if any(exited.get(name) is None for name in lists):
                return None
            if not planned:
                return post_data("post-data", None, self.jobs)
            if exited.get("post-data-early") is None and not done(planned[0].needed):
                return None
            return post_data("post-data", planned[0].later, self.jobs) if planned[0].later else SKIP

        def after_early(exited: Mapping[str, int | None]) -> list[str | Path] | None:
            if planned and exited.get("post-data-early") != 0:
                return None
            if planned:
                early_done(planned[0])
            return SKIP

        self._stage(data, followers=[("post-data-early", early), ("post-data", late), ("early-done", after_early)])

    def _list(self, name: str, entries: Sequence[int]) -> Path:
        path = self.work / f"{name}.list"
        path.write_text("".join(f"{dump_id};\n" for dump_id in entries))
        return path

    def _stage(self, argvs: Mapping[str, list[str | Path]], *,
               followers: Sequence[tuple[str, Callable[[Mapping[str, int | None]], list[str | Path] | None]]] = ()
               ) -> None:
        """Run `argvs` at once, then each follower in turn once it says what to run (None: not yet; SKIP:
        nothing) given the exit codes so far; wait for all of them. The first run to fail stops the others: its
        error is the one reported."""
        processes: dict[str, subprocess.Popen[bytes]] = {}
        pending = list(followers)
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
                    started = False
                    while pending:
                        command = pending[0][1](exited)
                        if command is None:
                            break
                        name = pending.pop(0)[0]
                        if command:
                            start(name, command)
                            started = True
                            break
                    if started:
                        continue
                    if not pending and all(code is not None for code in exited.values()):
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

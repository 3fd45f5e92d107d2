"""Storing every file a tool writes into a folder while it writes it (pg_basebackup's tar files), one thread per
file, stopping everything at the first failure. logical.py runs it for pg_dump."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cuisine_db.storage.growing import DirectoryWatch, GrowingFile

T = TypeVar("T")


def stream_folder(process: Any, folder: Path, handle: Callable[[str, GrowingFile], T], *,
                  wanted: Callable[[str], bool], workers: int) -> dict[str, T]:
    """Run `handle(name, growing_file)` for each wanted file as soon as it appears; wait for the process and
    every handler. A handler's failure kills the process; a killed or failed process abandons the readers."""
    watch = DirectoryWatch(folder)
    files: dict[str, GrowingFile] = {}
    running: dict[str, Future[T]] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backup-file")

    def start(name: str) -> None:
        if name not in files and wanted(name):
            files[name] = GrowingFile(folder / name)
            running[name] = pool.submit(task, name, files[name])

    def task(name: str, growing: GrowingFile) -> T:
        try:
            return handle(name, growing)
        finally:
            growing.close()

    try:
        while True:
            exited = process.poll() is not None
            fresh, closed = watch.poll(0.05)
            for name in fresh:
                start(name)
            for name in closed:
                start(name)
                if name in files:
                    files[name].finish()
            for future in running.values():
                if future.done() and future.exception() is not None:
                    future.result()
            if exited:
                for name in sorted(os.listdir(folder)):
                    start(name)
                for growing in files.values():
                    growing.finish()
                break
        return {name: future.result() for name, future in running.items()}
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        for growing in files.values():
            growing.abandon()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        watch.close()
        if process.poll() is None:
            process.kill()
        process.wait()

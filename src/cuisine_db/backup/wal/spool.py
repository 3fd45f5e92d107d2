"""The fetch-ahead spool: a background prefetcher keeps the next archived segments, verified, in a bounded folder.

While PostgreSQL replays segment N, the prefetcher (`cuisine-db wal prefetch`, started detached by the first
`wal fetch` of a recovery that finds no prefetcher alive, or by the restore itself before the server starts) has
N+1..N+k decrypted, decompressed and checked in `<spool>/prefetch/`, on one thread per core (age and zstd release
the GIL). Each segment goes through exactly what `wal fetch` does (fetch.ours: the record signed by a trusted key,
then fetch.download: the sha256 of the plain bytes against that record) into a temporary name, renamed into place
only when it verified: the folder holds verified copies only, and the restore command then only renames one into
pg_wal, in the shell PostgreSQL runs it with (enable._spooled_first), else through served.py.

The spool is bounded in segments (`wal.prefetch`) and bytes (`wal.spool_mb`), counting the copies being written:
a download starts only when its whole size (its record's) fits beside what is on disk. Where recovery stands is
the name the last `wal fetch` delivered: every way of serving (note_asked, served.serve, the restore command's shell)
opens an empty marker `<spool>/prefetch/.asked.<segment>` with O_TRUNC, which sets its modification time, and the
newest marker is where recovery stands (last_asked). An empty file because replacing one that holds data frees its
block, and on a file system mounted with `discard` that waits for the device: 20-40 ms per segment under the
replay's writes, sampled at 26% of the startup process's time (docs/benchmarks.md, stop 21). The prefetcher deletes
what is behind it (older markers too) and
stops when nothing asked for a while, when the folder it fills is removed or replaced (the next recovery's), or
when told to (`stop()`). A segment it cannot fetch or verify is skipped, not retried: `wal fetch` fetches it
itself when PostgreSQL asks, and fails loudly then (exit 254, naming it). Killed at any moment, it leaves at most
`.part` files, which the next prefetcher (or `stop()`) removes; `wal fetch` starts a new one on its next miss.

A recovery to the backup's own end (the prefetcher's `until`) asks for its last segment twice: once to replay it,
and again when recovery ends, to re-read the last record (PostgreSQL tries the archive before pg_wal). The
prefetcher therefore keeps a second verified copy of that one segment (`NAME.again`), delivered by the second ask
instead of a full fetch from the archive (150-250 ms on the benchmark's machine). It counts against the bound.
The prefetcher also fetches the timeline history files recovery will ask for (prefetcher._histories), which stay
in the spool until it is cleared: history files are copied out, never moved.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cuisine_db.backup.wal import wal_names
from cuisine_db.backup.wal.access import WalAccess

if TYPE_CHECKING:  # the fetch path imports this module: subprocess only when a prefetcher starts
    import subprocess

FOLDER = "prefetch"
ASKED = ".asked."  # + the segment name: the empty marker of a delivery (note_asked)
ASKED_BEFORE = ".asked"  # the note before stop 21 (the name inside): a standby's restore_command may still write it
LOCK = ".prefetcher"  # in the spool folder (not the prefetch one): flock held by the live prefetcher, its pid
LOG = "prefetcher.log"
READY_SECONDS = 30.0  # a prefetcher reads its keys and credentials in well under a second
IDLE_SECONDS = 60.0  # nothing delivered for this long: the recovery is over or stalled (a miss starts another)
RELIST_SECONDS = 1.0  # how often the archive is listed again while it has nothing more ahead
PART = ".part"
TAG = ".for"  # which restore the spool was filled for (fast_replay.tag): restores clear any other restore's spool
AGAIN = ".again"  # the copy of the `until` segment kept for recovery's second ask (served.py: AGAIN)


def folder(spool: Path) -> Path:
    return spool / FOLDER


def keep_again(where: Path, name: str) -> None:
    """A second copy of the verified segment `name` in the spool folder `where`, for the second ask (written under
    a temporary name, so that only a whole copy is ever there to deliver)."""
    import shutil

    temp = where / f"{name}{AGAIN}{PART}"
    shutil.copyfile(where / name, temp)
    os.replace(temp, where / f"{name}{AGAIN}")


def note_asked(spool: Path, name: str) -> None:
    """Where recovery stands (`wal fetch` calls it after each delivery): the prefetcher works ahead of it."""
    with contextlib.suppress(OSError):
        os.close(os.open(folder(spool) / f"{ASKED}{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                         0o600))


def markers(where: Path) -> list[tuple[int, str]]:
    """The delivery markers in the spool folder `where`: (modification time in ns, segment name), oldest first."""
    found = []
    with contextlib.suppress(OSError), os.scandir(where) as entries:
        for entry in entries:
            name = entry.name[len(ASKED):] if entry.name.startswith(ASKED) else _written_before(entry)
            if name is not None and wal_names.is_segment(name):
                with contextlib.suppress(OSError):
                    found.append((entry.stat(follow_symlinks=False).st_mtime_ns, name))
    return sorted(found)


def _written_before(entry: os.DirEntry[str]) -> str | None:
    """The segment an earlier version's note names: a seeded standby keeps the restore_command it was given in
    postgresql.auto.conf, and its shell still writes `.asked` (a regular file, never followed through a link)."""
    if entry.name != ASKED_BEFORE or not entry.is_file(follow_symlinks=False):
        return None
    try:
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 64).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)


def last_asked(where: Path, found: list[tuple[int, str]] | None = None) -> tuple[str | None, float]:
    """The segment recovery was last given from the spool folder `where` (or from its `found` markers()) and when
    (None, 0.0: none yet)."""
    found = markers(where) if found is None else found
    return (found[-1][1], found[-1][0] / 1e9) if found else (None, 0.0)


def alive(spool: Path) -> int | None:
    """The pid of the prefetcher working on this spool, or None (its lock is free)."""
    import fcntl

    try:
        fd = os.open(spool / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                pid = int(os.read(fd, 32).decode().strip() or 0)
            except ValueError:
                return None
            return pid if pid and _is_prefetcher(pid) else None  # (a new holder may not have written its own yet)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _is_prefetcher(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"\0prefetch\0" in handle.read()
    except OSError:
        return False


def stop(spool: Path) -> None:
    """Stop the prefetcher of this spool (if any) and empty the spool: before a new recovery nothing prefetched for
    an earlier one may be delivered, and after one nothing stays behind."""
    import shutil
    import signal

    from cuisine_db.waiting import wait_for

    def gone() -> bool | None:
        pid = alive(spool)
        if pid is None:
            return True
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        return None

    wait_for(gone, seconds=10, interval=0.01)
    shutil.rmtree(folder(spool), ignore_errors=True)


PROGRAM = "import sys; from cuisine_db.backup.wal.main import main; sys.exit(main(sys.argv[1:]))"


def start(access: WalAccess, after: str, options: list[str]) -> subprocess.Popen[bytes] | None:
    """Start a detached prefetcher working ahead of `after` unless one is alive; `options` are the calling
    `wal fetch`'s own (--config, --env, --spool, --identity-file, --credentials-file). Best effort: a prefetcher
    that does not start only means slower fetches. Returns it (None: not started) for ready()."""
    import subprocess
    import sys

    if access.prefetch <= 1 or alive(access.spool) is not None:
        return None
    with contextlib.suppress(OSError):
        access.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(access.spool / LOG, "ab") as output:
            return subprocess.Popen([sys.executable, "-c", PROGRAM, "prefetch", *options, after],
                                    stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True,
                                    close_fds=True)
    return None


def ready(spool: Path, child: subprocess.Popen[bytes] | None, seconds: float = READY_SECONDS) -> bool:
    """Wait until start()'s `child` has read its keys and credentials (its pid is in the lock file: alive()) or has
    exited, `seconds` at most: a caller that made copies of them for it may remove them after. True if it runs."""
    from cuisine_db.waiting import wait_for

    if child is None:
        return False
    found = wait_for(lambda: True if alive(spool) == child.pid else (False if child.poll() is not None else None),
                     seconds=seconds, interval=0.01)
    return bool(found)

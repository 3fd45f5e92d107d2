"""Replay at the hardware's pace on the private recovery server: its own settings for speed, and the WAL spool's
prefetcher started before the server (or while the backup is still being laid down).

The settings go on the private server's command line only (recovery.py): nothing is written to the data
directory's configuration, so the normal start that opens the restored cluster runs with the environment's own
settings again. They are safe there because nobody but the tool connects while it replays: wide read-ahead of the
blocks the WAL will touch (`recovery_prefetch`, `maintenance_io_concurrency`, a larger `wal_decode_buffer_size`
on 15+), restartpoints far apart (`max_wal_size`, `checkpoint_timeout`), and one `syncfs` instead of an fsync of
every file of the laid-down directory at start (`recovery_init_sync_method`).
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from cuisine_db.backup.wal import enable, spool, wal_names
from cuisine_db.config import Environment, Settings
from cuisine_db.postgres.runner import spawn

TAG = spool.TAG  # in the spool's folder: which restore its segments were prefetched for
LAUNCH_SECONDS = 60.0


def replay_settings(major: int) -> dict[str, str]:
    """The private server's settings for a fast replay (PostgreSQL `major`)."""
    found = {"maintenance_io_concurrency": "128", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
             "recovery_init_sync_method": "syncfs"}
    if major >= 15:
        found |= {"recovery_prefetch": "on", "wal_decode_buffer_size": "4MB"}
    return found


def first_needed(timeline: int | None, lsn: str | None, segment_size: int) -> str | None:
    """The segment before the one holding `lsn`: the prefetcher works on what follows it."""
    if timeline is None or not lsn:
        return None
    number = wal_names.segment_of(wal_names.parse_lsn(lsn), segment_size)
    return wal_names.segment_name(timeline, max(number - 1, 0), segment_size)


def tag(source_env: str, system_identifier: str | None, backup: str) -> str:
    return f"{source_env}\n{system_identifier}\n{backup}\n"


def tagged(spool_dir: Path) -> tuple[str, str | None]:
    """What the spool was filled for (tag()), and the segment its prefetcher started after."""
    try:
        text = (spool.folder(spool_dir) / TAG).read_text()
    except OSError:
        return "", None
    lines = text.splitlines()
    return "\n".join(lines[:3]) + "\n", (lines[3] if len(lines) > 3 else None)


def under_way(spool_dir: Path, for_tag: str, until: str | None) -> bool:
    """The spool is this restore's already (the lay-down filled it) and its prefetcher is still alive, or has the
    last segment the replay needs (`until`): a second `wal prefetch --detach` would add nothing but an interpreter's
    start-up (0.05-0.15 s measured) before the private server may start."""
    if tagged(spool_dir)[0] != for_tag:
        return False
    if spool.alive(spool_dir) is not None:
        return True
    return until is not None and (spool.folder(spool_dir) / until).is_file()


def start(settings: Settings, source: Environment, os_user: str | None, spool_dir: Path, after: str, *,
          for_tag: str, identity: Path | None, credentials: Path | None, drop: tuple[str, ...],
          until: str | None = None, system_identifier: str | None = None) -> subprocess.Popen[bytes] | None:
    """Start the prefetcher as the server's user, the spool tagged for this restore, reading the archive area of
    the backup's `system_identifier`, unless it is under way already (under_way()). Best effort: without it,
    `wal fetch` fetches each segment itself and starts one on its first miss. Returns the launching
    `wal prefetch --detach` without waiting for it (an interpreter's start-up, 0.1 s, that the lay-down or the
    private server's start need not wait for); the caller passes it to started() before removing the identity."""
    if under_way(spool_dir, for_tag, until):
        return None
    folder = spool.folder(spool_dir)
    with contextlib.suppress(OSError):
        from cuisine_db.postgres import osuser, safe_files

        osuser.give_to(spool_dir, os_user)
        osuser.give_to(folder, os_user)
        safe_files.write(folder / TAG, f"{for_tag}{after}\n", owner=os_user)
    argv = enable.prefetch_command(settings, source, after, spool=spool_dir, identity_file=identity,
                                   credentials_file=credentials, until=until, system_identifier=system_identifier)
    with contextlib.suppress(Exception):
        return spawn(argv, user=os_user, drop=drop, stderr=subprocess.DEVNULL)
    return None


def started(launch: subprocess.Popen[bytes] | None) -> None:
    """Wait for start()'s `wal prefetch --detach` to have exited (it has started the prefetcher by then), as start()
    itself waited before: the caller removes the identity and credential copies only after this. Bounded."""
    if launch is None:
        return
    try:
        launch.wait(timeout=LAUNCH_SECONDS)
    except subprocess.TimeoutExpired:
        launch.kill()
        launch.wait()

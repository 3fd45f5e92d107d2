"""Verifying a physical backup: lay it down in scratch (every object read back through sha256, age and zstd and
checked against the manifest on the way), combine an incremental chain, then `pg_verifybackup` on the result:
every file against backup_manifest's checksums, and the WAL from start to stop parsed with pg_waldump."""

from __future__ import annotations

from collections.abc import Callable

from cuisine_db.backup import laydown
from cuisine_db.backup.catalog import Resolved
from cuisine_db.backup.manifest import prefix
from cuisine_db.backup.workspace import scratch
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError
from cuisine_db.postgres import binaries, osuser
from cuisine_db.postgres.local import os_user_of
from cuisine_db.postgres.runner import run
from cuisine_db.storage.pipeline import IntegrityError

Progress = Callable[[int], None]


def structure(settings: Settings, env: Environment, resolved: Resolved, *,
              progress: Progress | None = None) -> tuple[list[tuple[str, str]], int]:
    """Problems as (object or file, what is wrong), and how many files pg_verifybackup checked."""
    name = resolved.manifest.name
    try:
        sources = laydown.chain(settings, env, resolved)
    except CuisineDbError as exc:
        return [(prefix(name) + "manifest.json", exc.message)], 0
    # Laid down as the server's OS user's files, as they are in the backup (nothing starts on them).
    os_user = os_user_of(settings, env)  # the environment's own user: the backup holds its data
    with scratch(settings, f"verify-{name}") as work:
        osuser.make_reachable(work, os_user)
        osuser.give_to(work, os_user, 0o711)
        data = work / "data"
        try:
            laydown.lay_down(settings, sources, data, data / "pg_tblspc", os_user, work, progress,
                             keep_config=True)
        except IntegrityError as exc:
            return [(exc.key, exc.problem)], 0
        except CuisineDbError as exc:
            return [(prefix(name), f"cannot be laid down: {exc.message}")], 0
        build = binaries.find(resolved.manifest.server_major, settings.cache_dir)
        result = run([build.program("pg_verifybackup"), "--exit-on-error", data], check=False, timeout=None)
        if result.returncode != 0:
            lines = [line for line in (result.stderr or result.stdout).strip().splitlines() if line] or ["failed"]
            return [(prefix(name) + "backup_manifest", f"pg_verifybackup: {line}") for line in lines[-3:]], 0
        checked = sum(1 for path in data.rglob("*") if path.is_file() and not path.is_symlink())
    return [], checked

"""Reading a backup's objects back: checked against the manifest on the way out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cuisine_db.backup.manifest import Manifest, ObjectEntry, prefix
from cuisine_db.storage import Repository
from cuisine_db.storage.pipeline import FetchedObject, IntegrityError, fetch

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class BackupSource:
    """A complete backup, its repository, and the identities that decrypt it."""

    repository: Repository
    manifest: Manifest
    identities: list[Any]

    def key(self, entry: ObjectEntry) -> str:
        return prefix(self.manifest.name) + entry.name

    def entry(self, file: str) -> ObjectEntry:
        for item in self.manifest.objects:
            if item.file == file:
                return item
        raise IntegrityError(prefix(self.manifest.name) + f"{file}.zst.age",
                             "the manifest lists no such object: the backup is incomplete")

    def stream(self, entry: ObjectEntry, destination: Any, *, progress: Progress | None = None,
               frames: bool = False, apart: bool = False) -> FetchedObject:
        """Write an object's plain bytes to `destination` (None: only check it); the stored size, sha256, plain
        size (at most its bound for a server-compressed tar, ObjectEntry.plain_bound: never more bytes are written)
        and, for table data, the row count must match the manifest.

        `frames` writes its zstd frames as stored instead, for a reader that decompresses them itself (pg_restore
        16+), without decompressing them here: the stored size and sha256 (the exact bytes the backup wrote, whose
        rows the manifest counted) and age's authentication of every chunk are then the check, and the caller
        checks the rows where they arrive (rows is None). `apart` decompresses on a thread of its own (fetch())."""
        fetched = fetch(self.repository, self.key(entry), destination, self.identities, expect_size=entry.size,
                        expect_sha256=entry.sha256, count_rows=entry.rows is not None and not frames,
                        progress=progress, compressed=frames, decompress=not frames,
                        expect_plain_size=None if frames else entry.plain_size, apart=apart)
        if frames:
            return fetched
        if not entry.fits(fetched.plain_size):
            raise IntegrityError(self.key(entry), entry.plain_mismatch(fetched.plain_size))
        if entry.rows is not None and fetched.rows != entry.rows:
            raise IntegrityError(self.key(entry), f"holds {fetched.rows} rows of {entry.table}, the manifest says "
                                                  f"{entry.rows}")
        return fetched

    def write_toc(self, folder: Path) -> Path:
        """A folder with the decrypted toc.dat alone: enough for pg_restore --list and schema SQL."""
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "toc.dat").open("wb") as handle:
            self.stream(self.entry("toc.dat"), handle)
        return folder

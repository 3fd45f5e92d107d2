"""An upper bound of each server-compressed tar's plain size, from PostgreSQL's own backup_manifest.

A physical backup on PostgreSQL 15+ stores the server's zstd stream as it is; learning its exact plain size would
mean decompressing it (1.5 s of our 3.7 s of CPU per scale-40 backup). Restores need a plain size only as the most
they will write, so the manifest records a bound instead (ObjectEntry.plain_bound), computed from what the server
itself lists: every file it sent, with its size. PostgreSQL's tar (src/port/tar.c, basebackup.c) holds, per file,
one 512-byte header (it refuses names over 99 bytes, so there are no extension headers) and the contents padded to
512; one header per directory and per tablespace link; and two zero blocks at the end, with no further padding.
Files under `pg_tblspc/<oid>/` go to `<oid>.tar` under the rest of their path, everything else to base.tar.
Directories are counted as every ancestor of a listed file, plus an allowance for directories no listed file is in
(pg_wal, pg_notify, pg_replslot and their like, ~20 in a fresh cluster).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cuisine_db.errors import FailedError

TAR_BLOCK = 512
TRAILER = 2 * TAR_BLOCK
BASE = "base.tar"
# Headers allowed in each tar for directories that hold no listed file, and for base.tar's tablespace links:
# 512 KiB, far above a cluster's own (~20), small beside any tar's size.
UNLISTED_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class PlainBounds:
    """The most plain bytes each tar of one backup can hold."""

    bounds: dict[str, int]

    def of(self, tar: str) -> int:
        """The bound of `tar` (`base.tar`, `<oid>.tar`); a tar no listed file belongs to (an empty tablespace)
        holds its directories and trailer only."""
        return self.bounds.get(tar, UNLISTED_ENTRIES * TAR_BLOCK + TRAILER)


def tar_of(path: str) -> tuple[str, str]:
    """Which tar a backup_manifest path is in, and its name inside that tar."""
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "pg_tblspc" and parts[1].isdigit():
        return f"{parts[1]}.tar", "/".join(parts[2:])
    return BASE, path


def plain_bounds(manifest: bytes) -> PlainBounds:
    """Bounds for every tar of the backup whose backup_manifest is `manifest`."""
    try:
        files = json.loads(manifest)["Files"]
        listed = [(item["Path"] if "Path" in item else bytes.fromhex(item["Encoded-Path"]).decode(
            "utf-8", "surrogateescape"), int(item["Size"])) for item in files]
    except (ValueError, KeyError, TypeError) as exc:
        raise FailedError(f"pg_basebackup's backup_manifest cannot be read for the plain sizes: {exc}") from None
    contents: dict[str, int] = {}
    directories: dict[str, set[str]] = {}
    for path, size in listed:
        tar, name = tar_of(path)
        contents[tar] = contents.get(tar, 0) + TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK
        parts = name.split("/")
        directories.setdefault(tar, set()).update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    tablespaces = {tar for tar in contents if tar != BASE}
    bounds = {tar: size + TAR_BLOCK * (len(directories[tar]) + UNLISTED_ENTRIES) + TRAILER
              for tar, size in contents.items()}
    if BASE in bounds:
        bounds[BASE] += TAR_BLOCK * len(tablespaces)
    return PlainBounds(bounds)

"""The manifest: plain JSON written last, the only mark of a complete backup, with a checksum of its own."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from cuisine_db.storage.pipeline import IntegrityError

FORMAT = 1
MANIFEST = "manifest.json"
VERIFICATION = "verification.json"
TEST_RESTORE = "test-restore.json"


def prefix(name: str) -> str:
    """The folder of a backup in the repository."""
    return f"backups/{name}/"


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One stored object: its name in the backup's folder, the file it restores to, and how to check it."""

    name: str
    file: str
    size: int
    sha256: str
    plain_size: int
    table: str | None = None
    rows: int | None = None


@dataclass(frozen=True, slots=True)
class TableEntry:
    schema: str
    name: str
    rows: int | None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds and where it came from (DESIGN.md § Backups)."""

    name: str
    env: str
    type: str
    database: str
    server_version: str
    server_version_num: int
    system_identifier: str | None
    timeline: int | None
    start_lsn: str | None
    stop_lsn: str | None
    started_at: datetime
    finished_at: datetime
    tool: dict[str, str]
    dump: dict[str, Any]
    encryption: dict[str, Any]
    compression: dict[str, Any]
    tables: tuple[TableEntry, ...]
    objects: tuple[ObjectEntry, ...]
    depends_on: str | None = None
    format: int = FORMAT
    checksum: str = field(default="", compare=False)

    @property
    def size(self) -> int:
        return sum(item.size for item in self.objects)

    @property
    def plain_size(self) -> int:
        return sum(item.plain_size for item in self.objects)

    @property
    def duration_s(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @property
    def server_major(self) -> int:
        return self.server_version_num // 10000

    @property
    def dump_major(self) -> int:
        return int(self.tool.get("pg_dump", "0").split(".")[0])

    def table(self, qualified: str) -> TableEntry | None:
        return next((t for t in self.tables if t.qualified == qualified), None)

    def to_json(self) -> bytes:
        body = _body(self)
        body["checksum"] = _checksum(body)
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, key: str) -> Manifest:
        """Parse and check a stored manifest; a damaged one is an IntegrityError naming it."""
        try:
            body = json.loads(data.decode("utf-8"))
            stored = body.pop("checksum")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError):
            raise IntegrityError(key, "the manifest is damaged (not complete JSON with a checksum)") from None
        if stored != _checksum(body):
            raise IntegrityError(key, "the manifest's checksum does not match its content: it was changed")
        try:
            if body.get("format") != FORMAT:
                raise IntegrityError(key, f"manifest format {body.get('format')} is not one this version reads")
            body["started_at"] = datetime.fromisoformat(body["started_at"])
            body["finished_at"] = datetime.fromisoformat(body["finished_at"])
            body["tables"] = tuple(TableEntry(**item) for item in body["tables"])
            body["objects"] = tuple(ObjectEntry(**item) for item in body["objects"])
            return replace(cls(**body), checksum=stored)
        except (KeyError, TypeError, ValueError):
            raise IntegrityError(key, "the manifest lacks fields this version needs") from None


def _body(manifest: Manifest) -> dict[str, Any]:
    body = asdict(manifest)
    body.pop("checksum")
    body["started_at"] = manifest.started_at.isoformat()
    body["finished_at"] = manifest.finished_at.isoformat()
    return body


def _checksum(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

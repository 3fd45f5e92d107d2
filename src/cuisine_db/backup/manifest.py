"""The manifest: plain JSON written last, the only mark of a complete backup, with a checksum of its own."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from cuisine_db.backup.backup_names import PHYSICAL_TYPES
from cuisine_db.errors import EXIT_REFUSED
from cuisine_db.storage.pipeline import IntegrityError

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"  # raw Ed25519 signature over manifest.json's exact bytes (storage/signing.py)
# Written only while `backup reencrypt` swaps a manifest (backup/reencrypt.py): the new manifest's signature,
# so that manifest.json verifies against one of the two at every moment.
NEXT_SIGNATURE = "manifest.next.sig"
VERIFICATION = "verification.json"
TEST_RESTORE = "test-restore.json"
# What a folder may be called, by repository area: a backup's `<env>-<type>-<UTC>`, an archive's `<env>-archive-<UTC>`.
_FOLDER = re.compile(r"^(?P<env>[a-z][a-z0-9_-]{0,30})-(?P<type>[a-z]+)-\d{8}T\d{6}Z$")
# A file a backup restores to is one plain name in one folder: letters, digits, `_`, `-`, `.`; never a path.
_PLAIN_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$")
# What a physical backup's objects restore to: pg_basebackup's tars and its backup_manifest, nothing else.
_PHYSICAL_FILE = re.compile(r"^(base\.tar|pg_wal\.tar|[1-9][0-9]{0,9}\.tar|backup_manifest)$")
# An object's stored name: `<file>.zst.age`, or `<file>.k<N>.zst.age` once `backup reencrypt` wrote its N-th
# generation (the new copy is written beside the old before the manifest swaps to it).
_GENERATION = re.compile(r"^\.k(?P<n>[1-9][0-9]{0,5})$")


def generation(entry_name: str, file: str) -> int | None:
    """0 for `<file>.zst.age`, N for `<file>.kN.zst.age`, None for any other name."""
    if not entry_name.startswith(file) or not entry_name.endswith(".zst.age"):
        return None
    middle = entry_name[len(file):-len(".zst.age")]
    if not middle:
        return 0
    found = _GENERATION.match(middle)
    return int(found["n"]) if found else None


class UnsafeManifestError(IntegrityError):
    """A manifest names something a restore would turn into a path outside its folder: refused (exit 4)."""

    exit_code = EXIT_REFUSED


def prefix(name: str) -> str:
    """The folder of a backup in the repository."""
    return f"backups/{name}/"


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One stored object: its name in the backup's folder, the file it restores to, and how to check it.

    `plain_bound`: `plain_size` is an upper bound of the plain size, not the exact size. A server-compressed
    physical tar is stored as the server compressed it, without decompressing it to count its bytes; its bound
    comes from PostgreSQL's backup_manifest (backup/tar_bound.py). Restores still stream at most that many plain
    bytes, and the frame walker proved the stream whole when it was stored. Written into the manifest only when
    true, so the bytes (and signatures) of manifests without it are what they always were."""

    name: str
    file: str
    size: int
    sha256: str
    plain_size: int
    table: str | None = None
    rows: int | None = None
    plain_bound: bool = False

    def fits(self, plain_size: int) -> bool:
        """Whether `plain_size` bytes read back agree with the entry: at most the bound, or exactly the size."""
        return plain_size <= self.plain_size if self.plain_bound else plain_size == self.plain_size

    def plain_mismatch(self, plain_size: int) -> str:
        """The problem when `plain_size` does not fit (for an IntegrityError naming the object)."""
        return (f"decrypts to {plain_size} bytes, the manifest says {'at most ' if self.plain_bound else ''}"
                f"{self.plain_size}")


@dataclass(frozen=True, slots=True)
class TableEntry:
    schema: str
    name: str
    rows: int | None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class WrittenBackup:
    """What every backup reports having written, logical or physical: its name and type, where, and how much."""

    name: str
    env: str
    type: str
    repository: str
    objects: int
    size: int
    plain_size: int


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
    # Signed backups (issue 15): the environment's backup counter (no rollback) and the signing key's id.
    sequence: int | None = None
    signer: str | None = None
    format: int = FORMAT
    checksum: str = field(default="", compare=False)

    @property
    def size(self) -> int:
        return sum(item.size for item in self.objects)

    @property
    def plain_size(self) -> int:
        """The plain bytes of all objects; an upper bound when `plain_bounded`."""
        return sum(item.plain_size for item in self.objects)

    @property
    def plain_bounded(self) -> bool:
        return any(item.plain_bound for item in self.objects)

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
        """The canonical body (sorted keys, no spaces, UTF-8): the exact bytes manifest.sig signs."""
        body = _body(self)
        body["checksum"] = _checksum(body)
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

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
            manifest = replace(cls(**body), checksum=stored)
        except (KeyError, TypeError, ValueError):
            raise IntegrityError(key, "the manifest lacks fields this version needs") from None
        check_names(manifest, key)
        return manifest


def check_names(manifest: Manifest, key: str) -> None:
    """Every name a restore turns into a path must be one the tool writes: the manifest's name is its folder's
    (and carries its env and type), each object is a plain file name of its kind, stored as `<file>.zst.age`
    (`<file>.kN.zst.age` once re-encrypted).
    Checked before anything is used, so a forged manifest cannot point a restore outside its folder."""
    parts = key.split("/")
    folder = parts[-2] if len(parts) >= 2 else ""
    found = _FOLDER.match(manifest.name) if isinstance(manifest.name, str) else None
    if found is None or manifest.name != folder:
        raise UnsafeManifestError(key, f"names the backup {str(manifest.name)[:200]!r}, not its folder {folder!r}: "
                                       "refused")
    if manifest.env != found["env"] or manifest.type != found["type"]:
        raise UnsafeManifestError(key, f"says environment {str(manifest.env)[:40]!r}, type "
                                       f"{str(manifest.type)[:40]!r}; its folder {folder} says otherwise: refused")
    if manifest.depends_on is not None and (not isinstance(manifest.depends_on, str)
                                            or _FOLDER.match(manifest.depends_on) is None):
        raise UnsafeManifestError(key, f"depends on {str(manifest.depends_on)[:200]!r}, not a backup name: refused")
    seen: set[str] = set()
    for entry in manifest.objects:
        file = entry.file if isinstance(entry.file, str) else ""
        plain = _PLAIN_FILE.match(file) is not None and ".." not in file
        if manifest.type in PHYSICAL_TYPES:
            plain = plain and _PHYSICAL_FILE.match(file) is not None
        stored_as = generation(entry.name, file) if isinstance(entry.name, str) else None
        if not plain or stored_as is None or file in seen:
            raise UnsafeManifestError(key, f"lists an object {str(entry.name)[:200]!r} restoring to "
                                           f"{str(entry.file)[:200]!r}: not a file name this tool writes; refused")
        if not (isinstance(entry.size, int) and isinstance(entry.plain_size, int) and entry.size >= 0
                and entry.plain_size >= 0):
            raise UnsafeManifestError(key, f"lists object {file} with a size that is not a count of bytes: refused")
        if not isinstance(entry.plain_bound, bool):
            raise UnsafeManifestError(key, f"lists object {file} with a plain_bound that is not true or false: "
                                           "refused")
        seen.add(file)


def _body(manifest: Manifest) -> dict[str, Any]:
    body = asdict(manifest)
    body.pop("checksum")
    for entry in body["objects"]:
        if entry["plain_bound"] is False:  # absent unless set: older manifests keep their exact bytes
            del entry["plain_bound"]
    body["started_at"] = manifest.started_at.isoformat()
    body["finished_at"] = manifest.finished_at.isoformat()
    return body


def _checksum(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

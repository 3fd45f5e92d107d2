"""State files and records, one way: `atomic_write` for every file the tool replaces, and one JSON codec for its
typed records whose reading raises `DamagedRecord`, naming the file, instead of pretending a damaged record is absent.

`atomic_write` has one durability level: a new temporary file in the target's folder (opened relative to a
descriptor of the folder, `O_CREAT|O_EXCL|O_NOFOLLOW`, born with its final mode and, where root writes for another
user, given to that user with `fchown` on the descriptor), written, fsynced, renamed over the target (a link at
the target is replaced, never followed), then the folder fsynced. A reader sees the old file or the new, never
half of one, and after a crash the new one stays.

Records are frozen dataclasses. `encode` writes one as JSON (datetimes in ISO form); `decode` reads one back with
pydantic's validation (imported only when a record is read, so the WAL archive command, which writes a cache
file, stays light): bad JSON, a missing field or a value of the wrong type is a `DamagedRecord`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cuisine_db.errors import FailedError, RefusedError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

T = TypeVar("T")

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_TEMPORARY_TRIES = 3


class UnsafeFileError(RefusedError):
    """A path the tool was about to write or read is a link, a device or a folder: refused (exit 4)."""


class DamagedRecord(FailedError):
    """A record file that is there but cannot be read as what the tool wrote (bad JSON, missing fields, wrong types,
    a signature that does not verify): shown as damaged, and a command that needs it stops (exit 1), naming it."""

    def __init__(self, where: str | Path, why: str, hint: str | None = None) -> None:
        self.where = str(where)
        self.why = why
        super().__init__(f"{self.where} is damaged: {why}",
                         hint=hint or "compare it with the tool's other records, repair or move it away by hand")


@dataclasses.dataclass(frozen=True, slots=True)
class Damaged:
    """A damaged record as a listing shows it: which file, and why."""

    where: str
    why: str

    @classmethod
    def of(cls, error: DamagedRecord) -> Damaged:
        return cls(error.where, error.why)

    def __str__(self) -> str:
        return f"damaged ({self.where}: {self.why})"


def plain_name(name: str) -> str:
    """`name` if it is one plain file name (no folder, not `.` or `..`), else UnsafeFileError."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UnsafeFileError(f"{name!r} is not a plain file name")
    return name


@contextlib.contextmanager
def folder(path: Path, *, follow: bool = False) -> Iterator[int]:
    """A descriptor of `path`, which must be a real folder (not a link to one, unless `follow`)."""
    try:
        fd = os.open(path, _DIRECTORY & ~os.O_NOFOLLOW if follow else _DIRECTORY)
    except OSError as exc:
        raise UnsafeFileError(f"{path} is not a folder the tool can write into safely ({exc.strerror})") from None
    try:
        yield fd
    finally:
        os.close(fd)


def owner_ids(user: str | None) -> tuple[int, int] | None:
    """(uid, gid) of an OS user, or None for "leave it ours"."""
    if user is None:
        return None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def open_new(parent: int, name: str, *, mode: int, owner: str | tuple[int, int] | None) -> int:
    """A new file `name` in the folder `parent` (a descriptor): created, never opened through a link, with `mode`
    whatever the umask, owned by `owner` (None: by us; (uid, gid) as owner_ids() gave them, for a caller that
    creates many files: the lay-down writes one per member, and the user database is read once)."""
    fd = os.open(plain_name(name), _NEW_FILE, mode, dir_fd=parent)
    try:
        os.fchmod(fd, mode)
        ids = owner if isinstance(owner, tuple) else owner_ids(owner)
        if ids is not None:
            os.fchown(fd, *ids)
    except BaseException:
        os.close(fd)
        os.unlink(name, dir_fd=parent)
        raise
    return fd


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _temporary_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o600, owner: str | None = None,
                 follow_folder: bool = True) -> None:
    """Replace `path` with `data` durably (see the module's docstring); the folder must exist. The names in it are
    never followed; the folder itself is taken as given (an operator may link a state folder elsewhere) unless
    `follow_folder` is False (a folder another user could have replaced by a link: refused)."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    name = plain_name(path.name)
    with folder(path.parent, follow=follow_folder) as parent:
        for attempt in range(_TEMPORARY_TRIES):
            temporary = _temporary_name(name)
            try:
                fd = open_new(parent, temporary, mode=mode, owner=owner)
                break
            except FileExistsError:
                if attempt == _TEMPORARY_TRIES - 1:
                    raise UnsafeFileError(f"cannot create a temporary file beside {path}: its names are taken "
                                          "(someone may have planted links there)") from None
        try:
            try:
                write_all(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=parent)
            raise
        os.fsync(parent)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot go into a record")


def encode(record: Any, *, indent: int | None = 2, sort_keys: bool = True,
           default: Callable[[Any], Any] = _plain) -> bytes:
    """A record (a dataclass) as JSON bytes, a newline at the end; datetimes in ISO form unless `default` says."""
    body = dataclasses.asdict(record) if dataclasses.is_dataclass(record) and not isinstance(record, type) else record
    return (json.dumps(body, indent=indent, sort_keys=sort_keys, default=default) + "\n").encode()


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def from_body(kind: type[T], body: Any, where: str | Path) -> T:
    """A record of `kind` from parsed JSON, or DamagedRecord naming `where`."""
    from pydantic import ValidationError

    try:
        value: T = _adapter(kind).validate_python(body)
    except ValidationError as exc:
        problems = exc.errors()
        first = problems[0]
        field = ".".join(str(part) for part in first["loc"]) or "the record"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DamagedRecord(where, f"{field}: {first['msg']}{more}") from None
    return value


def decode(kind: type[T], data: bytes | str, where: str | Path) -> T:
    """A record of `kind` from JSON bytes, or DamagedRecord naming `where` (bad JSON, missing or mistyped fields)."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise DamagedRecord(where, f"not JSON ({str(exc)[:80]})") from None
    if not isinstance(body, dict):
        raise DamagedRecord(where, f"a JSON {type(body).__name__}, not an object")
    return from_body(kind, body, where)


def load(kind: type[T], path: Path) -> T | None:
    """The record in `path`, None when there is no file, DamagedRecord when it is there and damaged."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise DamagedRecord(path, "a folder, not a file") from None
    return decode(kind, data, path)


def save(path: Path, record: Any, *, mode: int = 0o600, owner: str | None = None) -> None:
    """Write a record to `path` with atomic_write."""
    atomic_write(path, encode(record), mode=mode, owner=owner)

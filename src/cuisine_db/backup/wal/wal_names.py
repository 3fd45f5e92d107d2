"""WAL file names and where each lives in the repository.

PostgreSQL archives 24-hex-digit segments (timeline, log, segment: `000000010000000A000000FF`), timeline history
files (`00000002.history`), backup history files (`<segment>.<offset>.backup`) and, at promotion, the old
timeline's last partial segment (`<segment>.partial`). Each is stored once, under its name and the sha256 of its
content: `wal/<env>/<folder>/<name>-<sha256>.zst.age`, where the folder is the first 16 hex digits (timeline and
log) for segment-like names and the timeline for history files. The content hash in the key makes a second push
of the same bytes a no-op that needs no download, and a different segment under the same name visible as such.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
_SEGMENT_LIKE = re.compile(r"^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$")
_HISTORY = re.compile(r"^[0-9A-F]{8}\.history$")
_KEY_NAME = re.compile(r"^(?P<name>[0-9A-F.a-z]+)-(?P<sha>[0-9a-f]{64})\.zst\.age$")
SUFFIX = ".zst.age"
DEFAULT_SEGMENT_SIZE = 16 << 20


class BadWalName(ValueError):
    """Not a file name PostgreSQL archives: never let it reach a repository key."""


def is_segment(name: str) -> bool:
    return bool(_SEGMENT.fullmatch(name))


def is_history(name: str) -> bool:
    return bool(_HISTORY.fullmatch(name))


def check(name: str) -> str:
    """A name PostgreSQL archives or restores, or BadWalName."""
    if _SEGMENT_LIKE.fullmatch(name) or _HISTORY.fullmatch(name):
        return name
    raise BadWalName(f"{name!r} is not a WAL file name")


def folder(name: str) -> str:
    """Segments (and their .partial and .backup files) by timeline and log; history files by timeline."""
    check(name)
    return name[:8] if is_history(name) else name[:16]


def prefix(env: str, name: str) -> str:
    """The key prefix every stored copy of `name` starts with (the '-' keeps .partial copies apart)."""
    return f"wal/{env}/{folder(name)}/{name}-"


def key(env: str, name: str, sha256: str) -> str:
    return f"{prefix(env, name)}{sha256}{SUFFIX}"


def env_prefix(env: str) -> str:
    return f"wal/{env}/"


class Stored(NamedTuple):
    """One archived file as its key describes it (a NamedTuple, not a dataclass: see storage.base.ObjectInfo)."""

    name: str
    sha256: str


def parse_key(stored_key: str) -> Stored | None:
    """The file name and content hash a key holds, or None for anything else under wal/ (probes, info)."""
    last = stored_key.rsplit("/", 1)[-1]
    found = _KEY_NAME.fullmatch(last)
    if found is None:
        return None
    try:
        check(found["name"])
    except BadWalName:
        return None
    return Stored(found["name"], found["sha"])


def timeline(name: str) -> int:
    return int(name[:8], 16)


def segments_per_log(segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    return 0x100000000 // segment_size


def segment_number(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The segment's position in the WAL (independent of the timeline)."""
    if not _SEGMENT_LIKE.fullmatch(name):
        raise BadWalName(f"{name!r} is not a segment name")
    return int(name[8:16], 16) * segments_per_log(segment_size) + int(name[16:24], 16)


def segment_name(tli: int, number: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    per_log = segments_per_log(segment_size)
    return f"{tli:08X}{number // per_log:08X}{number % per_log:08X}"


def parse_lsn(text: str) -> int:
    """'16/B374D848' -> an integer position."""
    high, _, low = text.strip().partition("/")
    if not low:
        raise ValueError(f"{text!r} is not an LSN (e.g. 0/3000060)")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def segment_of(lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    return lsn // segment_size


def segment_start(number: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    return number * segment_size

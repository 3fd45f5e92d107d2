"""The stream pipeline: each object goes zstd -> age -> sha256 straight into the repository, and back.

Nothing is staged on disk: a source is read in chunks, compressed (python-zstandard releases the GIL),
encrypted with age (pyrage) and hashed on its way into the repository's writer. Reading verifies the
stored bytes' sha256 and size, authenticates every age chunk, and checks that the zstd stream ends where its last
frame does, so a flipped, missing or truncated byte anywhere is an error that names the object.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from cuisine_db.errors import CuisineDbError, FailedError
from cuisine_db.storage.base import Repository
from cuisine_db.storage.zstd_frames import FrameWalker, ZstdFormatError

CHUNK = 1 << 20
APART_BATCH = 256 << 10  # decrypted bytes handed to the zstd thread at a time (fetch(apart=True))
_TRAILER = b"\\.\n\n\n"
Progress = Callable[[int], None]


class IntegrityError(FailedError):
    """A stored object is not what the manifest says: changed, truncated, or unreadable with our keys."""

    def __init__(self, key: str, problem: str, hint: str | None = None) -> None:
        super().__init__(f"{key}: {problem}", hint=hint)
        self.key = key
        self.problem = problem


class RowCounter:
    """Counts rows in pg_dump's COPY text as it streams by: one line per row (newlines in values are escaped),
    less the end-of-data trailer `\\.` and the two empty lines pg_dump writes after it."""

    def __init__(self) -> None:
        self.lines = 0
        self.size = 0
        self.tail = b""

    def feed(self, data: bytes) -> None:
        self.lines += data.count(b"\n")
        self.size += len(data)
        self.tail = (self.tail + data[-8:])[-8:]

    @property
    def rows(self) -> int:
        if self.tail.endswith(_TRAILER) and (self.size == len(_TRAILER) or self.tail[-6:-5] == b"\n"):
            return self.lines - 3
        return self.lines

    @property
    def has_trailer(self) -> bool:
        return self.tail.endswith(_TRAILER)


class Source(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Tap:
    """The plain side of a store: counts bytes (and rows), reports progress, keeps the source's own error.
    zstd pulls from it with read(); the bytes are counted where they are, never copied."""

    def __init__(self, source: Source, rows: bool, progress: Progress | None) -> None:
        self.source = source
        self.counter = RowCounter() if rows else None
        self.progress = progress
        self.size = 0
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.source.read(size)
        except BaseException as exc:
            self.error = exc
            raise
        if data:
            self.size += len(data)
            if self.counter is not None:
                self.counter.feed(data)
            if self.progress is not None:
                self.progress(len(data))
        return data


class _Raw(io.RawIOBase):
    """A source with read() as the raw stream io.BufferedReader wants (readinto)."""

    def __init__(self, source: _Tap) -> None:
        super().__init__()
        self.source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Sink:
    """The stored side of a store: hashes (unless `hashed` is false) and counts the encrypted bytes on their way to
    the writer."""

    def __init__(self, target: Any, hashed: bool = True) -> None:
        self.target = target
        self.hash = hashlib.sha256() if hashed else None
        self.size = 0
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        try:
            self.target.write(data)
        except BaseException as exc:
            self.error = exc
            raise
        if self.hash is not None:
            self.hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """age calls flush at the end; the repository writer commits separately."""


class StoredObject(NamedTuple):
    """What a store wrote: the stored (encrypted) size and sha256, the plain size, and rows when counted.
    (A NamedTuple: this module is on the WAL archiving path, see storage.base.ObjectInfo.)"""

    key: str
    size: int
    sha256: str
    plain_size: int
    rows: int | None


def store(repository: Repository, key: str, source: Source, recipients: Sequence[Any], *, level: int = 3,
          count_rows: bool = False, progress: Progress | None = None, overwrite: bool = True,
          compress: bool = True, threads: int = 0) -> StoredObject:
    """Stream `source` through zstd and age into a new object; it becomes visible only when complete.

    `compress=False` is for a source that already is a zstd stream (a server-compressed base backup): it goes
    to age as it is, and the stored object reads back the same way. `threads` > 0 compresses on that many of
    zstd's own threads (one large object, such as a base backup's tar)."""
    import zstandard

    tap = _Tap(source, count_rows, progress)
    compressed: Any = _Raw(tap)
    if compress:
        compressed = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=threads).stream_reader(
            tap, read_size=CHUNK, closefd=False)  # type: ignore[arg-type]  # any object with read() will do
    with repository.open_write(key) as writer:
        sink = _Sink(writer)
        _encrypt_into(io.BufferedReader(compressed, CHUNK), sink, recipients, key, tap)
        writer.commit(overwrite=overwrite)
    rows = tap.counter.rows if tap.counter is not None else None
    return StoredObject(key, sink.size, sink.hash.hexdigest() if sink.hash else "", tap.size, rows)


def _encrypt_into(source: Any, sink: _Sink, recipients: Sequence[Any], key: str, tap: _Tap | None = None) -> None:
    """age from `source` into `sink`, chunk by chunk as age makes them."""
    import pyrage

    try:
        pyrage.encrypt_io(source, sink, list(recipients))
    except pyrage.EncryptError as exc:
        # Our own errors (a full disk, a failed source) travel through age as text: raise the original.
        original = (tap.error if tap is not None else None) or sink.error
        if isinstance(original, CuisineDbError | OSError):
            raise original from None
        raise IntegrityError(key, f"encryption failed: {exc}") from None


def _zstd_compressor_class() -> Any:
    """python-zstandard's ZstdCompressor. When nothing in this process has imported the package yet (the WAL
    archive command), it comes from the package's C extension alone: the package's __init__ imports `platform`
    only to choose that very backend, ~1.5 ms of each `wal push`'s CPU (docs/benchmarks.md, stop 17). The
    extension is the one `import zstandard` would use on CPython; anywhere it is not found, the package is
    imported as usual."""
    import sys

    name = "zstandard.backend_c"
    module = sys.modules.get("zstandard") or sys.modules.get(name)
    if module is None:
        from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec, PathFinder

        package = PathFinder.find_spec("zstandard") if sys.implementation.name == "cpython" else None
        for folder in (package.submodule_search_locations or []) if package is not None else []:
            for suffix in EXTENSION_SUFFIXES:
                path = f"{folder}/backend_c{suffix}"
                try:
                    loader = ExtensionFileLoader(name, path)
                    spec = ModuleSpec(name, loader, origin=path)
                    module = loader.create_module(spec)
                    loader.exec_module(module)
                except (ImportError, OSError):
                    continue
                sys.modules[name] = module
                break
            if module is not None:
                break
    if module is None:
        import zstandard

        module = zstandard
    return module.ZstdCompressor


def zstd_compressor(level: int) -> Any:
    """The compressor of every stored object: zstd at `level`, with the frame's checksum."""
    return _zstd_compressor_class()(level=level, write_checksum=True)


def encrypt(frame: bytes, recipients: Sequence[Any]) -> bytes:
    """A whole zstd frame in age: the stored form (what store() streams), made in one call."""
    import pyrage

    try:
        return bytes(pyrage.encrypt(frame, list(recipients)))
    except pyrage.EncryptError as exc:
        raise FailedError(f"encryption failed: {exc}") from None


def seal(data: Any, recipients: Sequence[Any], *, level: int = 3) -> bytes:
    """The stored form of an object held in memory or mapped (`data`: bytes or any buffer): the same zstd frame
    (with its checksum) in age that store() streams, but compressed and encrypted in one call each instead of
    through Python-level streams, a quarter less CPU per segment."""
    return encrypt(zstd_compressor(level).compress(data), recipients)


def store_sealed(repository: Repository, key: str, sealed: Callable[[], bytes], *, plain_size: int,
                 overwrite: bool = True, before_commit: Callable[[], None] | None = None) -> StoredObject:
    """Create `key` (invisibly, as store() does), write what `sealed()` returns (seal()'s output, perhaps computed
    on another thread meanwhile) and commit; `before_commit` may still refuse the object by raising."""
    with repository.open_write(key) as writer:
        data = sealed()
        writer.write(data)
        if before_commit is not None:
            before_commit()
        writer.commit(overwrite=overwrite)
    return StoredObject(key, len(data), hashlib.sha256(data).hexdigest(), plain_size, None)


class _Pieces:
    """A sequence of byte strings read as one stream (age's source in store_frame)."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = pieces
        self.index = 0
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        while self.index < len(self.pieces) and self.offset >= len(self.pieces[self.index]):
            self.index += 1
            self.offset = 0
        if self.index >= len(self.pieces):
            return b""
        piece = self.pieces[self.index]
        end = len(piece) if size is None or size < 0 else self.offset + size
        data = piece[self.offset:end]
        self.offset += len(data)
        return data


def store_frame(repository: Repository, key: str, frame: Sequence[bytes], recipients: Sequence[Any], *,
                plain_size: int, overwrite: bool = True,
                before_commit: Callable[[], None] | None = None) -> StoredObject:
    """Store a whole zstd frame held in memory, in the pieces the compressor returned (a WAL segment's, push.py),
    as store() would: age reads the pieces in turn and its chunks go to the repository's writer as they are made.
    Neither the joined frame nor one encrypted copy of it is made in memory first: those two copies, in fresh
    pages, cost a steady-state segment's push ~11 ms of CPU (docs/benchmarks.md, stop 18). `before_commit` may
    still refuse the object by raising. The stored bytes are not hashed (WAL keys and records name the plain
    file's sha256): sha256 is ""."""
    with repository.open_write(key) as writer:
        sink = _Sink(writer, hashed=False)
        _encrypt_into(_Pieces(frame), sink, recipients, key)
        if before_commit is not None:
            before_commit()
        writer.commit(overwrite=overwrite)
    return StoredObject(key, sink.size, "", plain_size, None)


def store_bytes(repository: Repository, key: str, data: Any, recipients: Sequence[Any], *, level: int = 3,
                overwrite: bool = True, before_commit: Callable[[], None] | None = None) -> StoredObject:
    """Store an object held in memory or mapped: seal() then store_sealed()."""
    return store_sealed(repository, key, lambda: seal(data, recipients, level=level), plain_size=len(data),
                        overwrite=overwrite, before_commit=before_commit)


class _HashingReader:
    """The stored side of a fetch: hashes and counts bytes as age reads them."""

    def __init__(self, reader: Any, progress: Progress | None, key: str = "", limit: int | None = None) -> None:
        self.reader = reader
        self.hash = hashlib.sha256()
        self.size = 0
        self.progress = progress
        self.error: BaseException | None = None
        self.key = key
        self.limit = limit

    def read(self, size: int = -1) -> bytes:
        if self.limit is not None:
            # Never more than one byte past the declared size: a forged object cannot make us read (or write) more.
            room = self.limit + 1 - self.size
            size = room if size is None or size < 0 else min(size, room)
        try:
            data: bytes = self.reader.read(size) if size != 0 else b""
            if self.limit is not None and self.size + len(data) > self.limit:
                raise IntegrityError(self.key, f"holds more than the manifest's {self.limit} bytes: refused while "
                                               "reading")
        except BaseException as exc:
            self.error = exc
            raise
        self.hash.update(data)
        self.size += len(data)
        if self.progress is not None and data:
            self.progress(len(data))
        return data


class _Plain:
    """The plain side of a fetch: decompresses age's output, counts rows, writes to the destination (the plain
    bytes, or with `compressed` the zstd frames as stored, once they decompress: a reader that decompresses them
    itself, such as pg_restore 16+, then gets a quarter of the bytes and checked ones). `compressed` without
    `decompress` passes the frames on untouched (size counts the frames' bytes).

    Decompressing reads across frames (a stream the server compressed may hold several), so the decompressor
    cannot say where the stream should end: the frame walker (zstd_frames.py) follows the same bytes and proves
    that they end where their last frame does. A decompressor of the first frame only would silently drop the
    rest of a stream handed to it in one piece, which a plain size known only as a bound would not notice."""

    def __init__(self, destination: Any, rows: bool, decompress: bool, compressed: bool = False, key: str = "",
                 limit: int | None = None) -> None:
        import zstandard

        self.key = key
        self.limit = limit

        self.destination = destination
        self.decompressor = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True) if decompress \
            else None
        self.frames = FrameWalker() if decompress else None
        self.compressed = compressed
        self.counter = RowCounter() if rows else None
        self.size = 0
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        try:
            if self.frames is not None:
                try:
                    self.frames.feed(data)
                except ZstdFormatError as exc:
                    raise IntegrityError(self.key, f"decrypts to what {exc.problem}") from None
            plain = self.decompressor.decompress(data) if self.decompressor is not None else data
            if self.limit is not None and self.size + len(plain) > self.limit:
                raise IntegrityError(self.key, f"decompresses to more than the manifest's {self.limit} bytes: "
                                               "refused while reading")
            if plain:
                if self.counter is not None:
                    self.counter.feed(plain)
                self.size += len(plain)
                if self.destination is not None and not self.compressed:
                    self.destination.write(plain)
            if self.compressed and self.destination is not None:
                self.destination.write(data)
        except BaseException as exc:
            self.error = self.error or exc  # the first failure is the cause; age may write again after it
            raise
        return len(data)

    def flush(self) -> None:
        """age calls flush at the end; completeness is checked by the caller."""

    @property
    def complete(self) -> bool:
        return self.frames is None or self.frames.complete


class FetchedObject(NamedTuple):
    key: str
    size: int
    sha256: str
    plain_size: int
    rows: int | None
    has_trailer: bool


def fetch(repository: Repository, key: str, destination: Any, identities: Sequence[Any], *,
          expect_size: int | None = None, expect_sha256: str | None = None, decompress: bool = True,
          count_rows: bool = False, progress: Progress | None = None, compressed: bool = False,
          expect_plain_size: int | None = None, apart: bool = False) -> FetchedObject:
    """Stream an object out through age and zstd into `destination` (anything with write(), or None to check
    only), then verify its stored size and sha256 against what the manifest recorded. `compressed` writes the
    decrypted zstd frames instead of the plain bytes, still decompressing them here to check and count them
    unless `decompress` is false (then plain_size is the frames' size and rows None). The sizes are enforced while
    reading: one byte past `expect_size` stored or `expect_plain_size` plain bytes and the read stops, refused.

    `apart` decompresses on a thread of its own (storage/handoff.py), while this one reads, hashes and decrypts
    the next bytes: zstd was the largest part of a large object's fetch (about 40% of the lay-down's samples,
    docs/benchmarks.md stop 22), and it releases the GIL. A failure on that side is raised here as it would be
    without it."""
    import pyrage
    import zstandard

    reader = repository.open_read(key)
    hashing = _HashingReader(reader, progress, key, expect_size)
    plain = _Plain(destination, count_rows, decompress, compressed, key, expect_plain_size)
    try:
        if apart:
            from cuisine_db.storage.handoff import Handoff  # not on the WAL commands' path

            with Handoff(plain, name=f"zstd-{key.rsplit('/', 1)[-1]}", batch=APART_BATCH) as handoff:
                pyrage.decrypt_io(hashing, handoff, list(identities))
        else:
            pyrage.decrypt_io(hashing, plain, list(identities))
    except (pyrage.DecryptError, OSError, zstandard.ZstdError) as exc:
        original = hashing.error or plain.error
        if isinstance(original, CuisineDbError):
            raise original from None
        if isinstance(original, zstandard.ZstdError):
            raise IntegrityError(key, f"not a valid zstd stream after decryption ({original})") from None
        if isinstance(original, OSError):
            raise original from None
        if "No matching keys" in str(exc):
            raise IntegrityError(key, "cannot be decrypted with the configured age identity (no matching key)",
                                 hint="restores and verification need the private key matching the backup's "
                                      "recipients: check backup.identity_file / identity_env") from None
        problem = "changed or truncated: age authentication failed"
        if expect_size is not None and hashing.size != expect_size:
            problem += f" ({hashing.size} of {expect_size} bytes read)"
        raise IntegrityError(key, problem) from None
    finally:
        reader.close()
    digest = hashing.hash.hexdigest()
    if expect_size is not None and hashing.size != expect_size:
        raise IntegrityError(key, f"size {hashing.size} differs from the manifest's {expect_size}")
    if expect_sha256 is not None and digest != expect_sha256:
        raise IntegrityError(key, "sha256 differs from the manifest's: the stored bytes changed")
    if not plain.complete:
        why = plain.frames.why_incomplete() if plain.frames is not None else ""
        raise IntegrityError(key, f"the object is truncated: its zstd stream {why}")
    rows = plain.counter.rows if plain.counter is not None else None
    trailer = plain.counter.has_trailer if plain.counter is not None else False
    return FetchedObject(key, hashing.size, digest, plain.size, rows, trailer)

"""The archive and restore commands' first Python step, run as a script without Python's site setup (`python -S
served.py wal push|fetch ...`): a segment the prefetcher has in the spool (and the restore command's shell did not
serve already, enable._spooled_first) is renamed into place with nothing but `os` imported (a timeline history file
it holds is copied, as recovery asks for some twice), and a segment an earlier `wal push` already stored (pushed
ahead, noted in the ledger) is acknowledged: at once while it is the very file the batch stored (its identity in
the ledger), else after hashing it against the ledger, with `hashlib` added.

Python's site initialisation (the virtualenv, the site-packages .pth files) is most of an interpreter's start-up:
about 20 ms of the 28 ms `python -c pass` takes here, against 7 ms with `-S`. PostgreSQL runs the restore command
and the archive command once per segment, so these calls skip it; anything else (a segment not in the spool or not
in the ledger, a hash that differs from the ledger's, a history file not in the spool, options this reader does
not know) puts the package and its virtual environment's site-packages on sys.path (site's set-up where that is
not plain: _plain_paths) and runs `wal` (main.py), which checks everything again. Only what the prefetcher
verified is ever in the spool (spool.py); only what push.py stored, with its hash, in the ledger.
"""

from __future__ import annotations

import os
import sys

FOLDER = "prefetch"  # spool.FOLDER
ASKED = ".asked."  # spool.ASKED
AGAIN = ".again"  # spool.AGAIN
LEDGER = "pushed"  # push.LEDGER
_HEX = "0123456789ABCDEF"
_VALUED = ("--config", "--env", "--spool", "--identity-file", "--credentials-file", "--system-id")
_POSITIONAL = {"fetch": 2, "push": 1}


def _copy_history(spooled: str, name: str, destination: str) -> bool:
    """A timeline history file the prefetcher verified, copied into place (it stays: recovery asks for some twice);
    False when the spool does not hold it."""
    if len(name) != 16 or not name.endswith(".history") or name[:8].strip(_HEX):
        return False
    temp = f"{destination}.{os.getpid()}.part"
    try:
        source = os.open(os.path.join(spooled, name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        data = b""
        while chunk := os.read(source, 1 << 16):
            data += chunk
        target = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(target, view):]
        finally:
            os.close(target)
        os.replace(temp, destination)
    except OSError:
        try:  # noqa: SIM105 (contextlib would be one more import on this path)
            os.unlink(temp)
        except OSError:
            pass
        return False
    finally:
        os.close(source)
    return True


def serve(spool: str, name: str, destination: str) -> bool:
    """Move a prefetched segment (or the second copy kept of the last one, spool.AGAIN) to `destination` and note
    where recovery stands; False when it is not there (or cannot simply be renamed: another filesystem), leaving
    the call to main.py."""
    spooled = os.path.join(spool, FOLDER)
    target = os.path.join(os.getcwd(), destination)
    if len(name) != 24 or name.strip(_HEX):
        return _copy_history(spooled, name, target)
    try:
        os.replace(os.path.join(spooled, name), target)
    except FileNotFoundError:
        try:
            os.replace(os.path.join(spooled, name + AGAIN), target)
        except OSError:
            return False
    except OSError:
        return False
    try:  # noqa: SIM105 (spool.note_asked, without importing contextlib on the path that imports nothing)
        os.close(os.open(os.path.join(spooled, ASKED + name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                         0o600))
    except OSError:
        pass  # the prefetcher goes by the marker before
    return True


def acknowledged(spool: str, path: str) -> bool:
    """`path` is the very file an earlier call pushed ahead: nothing to do but forget the ledger's entry. The ledger
    holds the sha256 the batch stored it under and, where the batch could be sure of it, the file's identity then
    (push.identity: device, inode, size, modification and change times; why these suffice is argued there). The
    same identity now answers at once; anything else (no identity noted, a file rewritten, replaced or touched since)
    is hashed and must match the ledger's sha256. False otherwise, leaving the call to main.py (push.py checks the
    ledger's sha256 the same way)."""
    name = os.path.basename(path)
    if len(name) != 24 or name.strip(_HEX):
        return False
    entry = os.path.join(spool, LEDGER, name)
    file = os.path.join(os.getcwd(), path)
    try:
        with open(entry, encoding="ascii") as handle:
            noted, *identity = handle.read().split()
        now = os.stat(file)
        if identity != [str(now.st_dev), str(now.st_ino), str(now.st_size), str(now.st_mtime_ns),
                        str(now.st_ctime_ns)]:
            import hashlib

            with open(file, "rb") as handle:
                if hashlib.file_digest(handle, "sha256").hexdigest() != noted:
                    return False
    except (OSError, ValueError):
        return False
    try:  # noqa: SIM105 (contextlib would be one more import on this path)
        os.unlink(entry)
    except OSError:
        pass
    return True


def _served(argv: list[str]) -> bool:
    """`[wal] push|fetch [--name value]... arguments` with a --spool: answered here?"""
    if argv[:1] == ["wal"]:
        argv = argv[1:]
    if not argv or argv[0] not in _POSITIONAL:
        return False
    values: dict[str, str] = {}
    positional: list[str] = []
    rest = argv[1:]
    index = 0
    while index < len(rest):
        item = rest[index]
        index += 1
        if item.startswith("-"):
            name, has_value, value = item.partition("=")
            if name not in _VALUED or (not has_value and index >= len(rest)):
                return False
            if not has_value:
                value = rest[index]
                index += 1
            values[name] = value
        else:
            positional.append(item)
    if "--spool" not in values or len(positional) != _POSITIONAL[argv[0]]:
        return False
    if argv[0] == "push":
        return acknowledged(values["--spool"], positional[0])
    return serve(values["--spool"], positional[0], positional[1])


# .pth files that a call can do without: setuptools' distutils shim, and this package's own editable install (whose
# one job, making cuisine_db importable, _plain_paths() does itself).
_PTH_UNNEEDED = ("distutils-precedence.pth", "__editable__.cuisine_db-", "__editable___cuisine_db_")


def _plain_paths(here: str) -> list[str] | None:
    """What site's set-up would add to sys.path for this call, when that is plain to see: in a virtual environment
    without the system's site-packages whose site-packages hold no .pth file a dependency might need, the folder
    holding this very cuisine_db package and the environment's site-packages. That spares importing site and
    processing every .pth (about 4 ms of CPU per call, docs/benchmarks.md stop 17). None otherwise: site.main()."""
    prefix = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    try:
        with open(os.path.join(prefix, "pyvenv.cfg"), encoding="utf-8") as handle:
            config = handle.read()
    except OSError:
        return None
    for line in config.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "include-system-site-packages" and value.strip().lower() != "false":
            return None
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    found = []
    for lib in dict.fromkeys((sys.platlibdir, "lib")):
        folder = os.path.join(prefix, lib, version, "site-packages")
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        if any(name.endswith(".pth") and not name.startswith(_PTH_UNNEEDED) for name in names):
            return None
        found.append(folder)
    if not found:
        return None
    root = os.path.dirname(os.path.dirname(os.path.dirname(here)))  # <root>/cuisine_db/backup/wal
    return list(dict.fromkeys([root, *found]))


def main(argv: list[str]) -> int:
    if _served(argv):
        return 0
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]  # no shadowing by our files
    paths = _plain_paths(here)
    if paths is None:
        import site

        site.main()
    else:
        sys.path += [path for path in paths if path not in sys.path]
    from cuisine_db.backup.wal.main import main as wal_main

    return wal_main(argv[1:] if argv[:1] == ["wal"] else argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

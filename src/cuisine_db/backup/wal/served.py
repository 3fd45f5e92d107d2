"""The restore_command's first step, run as a script without Python's site setup (`python -S served.py fetch ...`):
a segment the prefetcher has in the spool is renamed into place with nothing but `os` imported.

Python's site initialisation (the virtualenv, the site-packages .pth files) is most of an interpreter's start-up:
about 20 ms of the 28 ms `python -c pass` takes here, against 7 ms with `-S`. PostgreSQL runs the restore command
once per segment, so the spool-served call skips it; anything else (a segment not in the spool, a history file,
options this reader does not know) sets site up as usual and runs `wal` (main.py), which checks everything again.
Only what the prefetcher verified is ever in the spool (spool.py).
"""

from __future__ import annotations

import os
import sys

FOLDER = "prefetch"  # spool.FOLDER
ASKED = ".asked"  # spool.ASKED
_HEX = "0123456789ABCDEF"
_VALUED = ("--config", "--env", "--spool", "--identity-file", "--credentials-file")


def serve(spool: str, name: str, destination: str) -> bool:
    """Move a prefetched segment to `destination` and note where recovery stands; False when it is not there (or
    cannot simply be renamed: another filesystem), leaving the call to main.py."""
    if len(name) != 24 or name.strip(_HEX):
        return False
    spooled = os.path.join(spool, FOLDER)
    try:
        os.replace(os.path.join(spooled, name), os.path.join(os.getcwd(), destination))
    except OSError:
        return False
    marker = os.path.join(spooled, ASKED)
    temp = f"{marker}.{os.getpid()}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, name.encode())
        finally:
            os.close(fd)
        os.replace(temp, marker)
    except OSError:
        pass  # the prefetcher cleans behind a little later
    return True


def _served(argv: list[str]) -> bool:
    """`fetch [--name value]... name destination` with a --spool: served from it?"""
    if not argv or argv[0] != "fetch":
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
    if "--spool" not in values or len(positional) != 2:
        return False
    return serve(values["--spool"], positional[0], positional[1])


def main(argv: list[str]) -> int:
    if _served(argv):
        return 0
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]  # no shadowing by our files
    import site

    site.main()
    from cuisine_db.backup.wal.main import main as wal_main

    return wal_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

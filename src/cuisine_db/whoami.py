"""Who runs this command, as every record of ours names them: OS user at host."""

from __future__ import annotations

import getpass
import socket


def who() -> str:
    """The operator as journals, state files and catalog records name them: `user@host`."""
    return f"{getpass.getuser()}@{socket.gethostname()}"

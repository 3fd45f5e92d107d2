"""Local clusters only: who may read or change the data directory, its configuration and the tool's pgpass."""

from __future__ import annotations

import os
import pwd
import shlex
import stat
from pathlib import Path

from cuisine_db.findings import Finding

_CONFIG_FILES = ("postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf")
_KEYS = ("server.key",)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _finding(severity: str, path: Path, evidence: str, mode: int) -> Finding:
    return Finding("file-permissions", severity, str(path), evidence, shlex.join(["chmod", f"{mode:o}", str(path)]))


def _owner(path: Path, expected_uid: int, user: str) -> Finding | None:
    uid = path.stat().st_uid
    if uid == expected_uid:
        return None
    return Finding("file-owner", "error", str(path), f"owned by uid {uid}, not the server's user {user}",
                   shlex.join(["chown", f"{user}:", str(path)]))


def check_files(datadir: Path, pgpass: Path, server_user: str | None) -> list[Finding]:
    """Modes and owners against what initdb and libpq expect (0700/0750 directory, 0600/0640 files)."""
    if not datadir.is_dir():
        return []
    user = server_user or pwd.getpwuid(os.geteuid()).pw_name
    uid = pwd.getpwnam(user).pw_uid
    findings = []
    owner = _owner(datadir, uid, user)
    if owner:
        findings.append(owner)
    if _mode(datadir) & 0o027:
        findings.append(_finding("error", datadir, f"mode {_mode(datadir):o}: others (or the group, to write) may "
                                 "enter the data directory; the server refuses to start like this", 0o700))
    log_dir = datadir / "log"
    if log_dir.is_dir() and _mode(log_dir) & 0o007:
        findings.append(_finding("warning", log_dir, f"mode {_mode(log_dir):o}: every local user may read the "
                                 "server's logs (statements, client addresses)", 0o700))
    for name in _CONFIG_FILES:
        path = datadir / name
        if not path.exists():
            continue
        mode = _mode(path)
        if mode & 0o022:
            findings.append(_finding("error", path, f"mode {mode:o}: others may change the server's configuration",
                                     0o600))
        elif mode & 0o004:
            findings.append(_finding("warning", path, f"mode {mode:o}: every local user may read it", 0o600))
    for name in _KEYS:
        path = datadir / name
        if path.exists() and _mode(path) & 0o077:
            findings.append(_finding("error", path, f"mode {_mode(path):o}: the TLS private key is readable by others "
                                     "(the server refuses it)", 0o600))
    if pgpass.exists() and _mode(pgpass) & 0o077:
        findings.append(_finding("error", pgpass, f"mode {_mode(pgpass):o}: the tool's passwords are readable by "
                                 "others (and libpq ignores the file)", 0o600))
    return findings

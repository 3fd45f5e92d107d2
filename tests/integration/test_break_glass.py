"""docs/break-glass.md works: its commands, run as written with age, zstd and pg_restore only, restore a backup."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid

import pytest
from backup_fixtures import BackupProject
from conftest import REPO
from psycopg import sql

from cuisine_db.postgres import binaries


def doc_commands(section: str = "## The commands") -> str:
    """The one bash block of a section of break-glass.md (backups: "The commands"; archives have their own)."""
    text = (REPO / "docs" / "break-glass.md").read_text()
    part = text.split(f"\n{section}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", part, re.DOTALL)
    assert len(blocks) == 1, f"{section!r} of break-glass.md should hold exactly one bash block: the commands"
    return str(blocks[0])


@pytest.mark.skipif(not (shutil.which("age") and shutil.which("zstd")), reason="age and zstd (Debian packages) "
                    "are not installed; .ci/run installs them")
@pytest.mark.parametrize("server", [14], indirect=True)
def test_the_break_glass_commands_restore_a_backup_by_hand(bproject: BackupProject) -> None:
    name = bproject.backup("production", "logical")
    target = "bg_" + uuid.uuid4().hex[:10]
    build = binaries.find(14, bproject.settings.cache_dir)
    environ = {**os.environ, "BACKUP": str(bproject.root / "repository" / "backups" / name),
               "IDENTITY": str(bproject.keys.identity_file), "TARGET": target, "PG_BIN": str(build.bindir),
               "SIGNER": str(bproject.root / ".cuisine" / "keys" / "signing.pem"),
               "PGHOST": "127.0.0.1", "PGPORT": str(bproject.server.port), "PGUSER": "cuisine",
               "PGPASSFILE": str(bproject.server.passfile), "PGDATABASE": "postgres"}
    result = subprocess.run(["bash", "-c", doc_commands()], env=environ, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    bproject.databases["by_hand"] = target
    assert bproject.fingerprints("by_hand") == bproject.fingerprints("production")
    # The sha256 check in step 1 catches a changed object before anything is restored.
    folder = bproject.root / "repository" / "backups" / name
    victim = max(folder.glob("*.dat.zst.age"), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[100] ^= 1
    victim.write_bytes(bytes(data))
    again = subprocess.run(["bash", "-c", doc_commands()], env={**environ, "TARGET": target + "_2"},
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode != 0 and victim.name in again.stdout + again.stderr
    with bproject.server.admin() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [target + "_2"]).fetchone() == (0,)
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(target)))

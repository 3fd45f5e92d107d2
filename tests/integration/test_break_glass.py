"""docs/break-glass.md works: its commands, run as written with age, zstd and pg_restore only, restore a backup."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

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


def _pem_command() -> str:
    """The documented way to turn a pinned `ed25519:...` value (KEY) into signing.pem for openssl."""
    text = (REPO / "docs" / "break-glass.md").read_text()
    found = re.search(r"`(\{ printf '302a300506032b6570032100'[^`]+openssl pkey -pubin -inform DER -out signing\.pem)`",
                      text)
    assert found is not None, "break-glass.md no longer shows how to make signing.pem from a trusted_signers value"
    return found.group(1)


@pytest.mark.skipif(not (shutil.which("age") and shutil.which("zstd")), reason="age and zstd (Debian packages) "
                    "are not installed; .ci/run installs them")
@pytest.mark.parametrize("server", [14], indirect=True)
def test_break_glass_after_key_rotation_with_the_pinned_key_only(bproject: BackupProject, tmp_path: Path) -> None:
    """After rotate-keys and reencrypt (old identity deleted), the documented commands restore a backup by hand with
    the new identity and a PEM made, as documented, from the pinned trusted_signers value."""
    config = bproject.config.read_text()
    config = config.replace(f'recipients = ["{bproject.keys.recipient}"]\n', "")
    bproject.config.write_text(config.replace(f'identity_file = "{bproject.keys.identity_file}"\n', ""))
    assert bproject.cli("backup", "keygen").returncode == 0
    name = bproject.backup("production", "logical")
    rotated = bproject.cli("backup", "rotate-keys", "--env", "production", "--json")
    assert rotated.returncode == 0, rotated.stderr
    done = bproject.cli("backup", "reencrypt", "--env", "production", "--yes")
    assert done.returncode == 0, done.stderr
    for path in json.loads(rotated.stdout)["retired"]:
        os.unlink(path)
    folder = bproject.root / "repository" / "backups" / name
    assert any(".k1.zst.age" in path.name for path in folder.iterdir())
    keys = bproject.root / ".cuisine" / "keys"
    pinned = (keys / "signing.pub").read_text().splitlines()[0]
    made = subprocess.run(["bash", "-c", _pem_command()], env={**os.environ, "KEY": pinned}, cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    signer = tmp_path / "signing.pem"
    assert signer.read_bytes() == (keys / "signing.pem").read_bytes()
    target = "bg_" + uuid.uuid4().hex[:10]
    build = binaries.find(14, bproject.settings.cache_dir)
    environ = {**os.environ, "BACKUP": str(folder), "IDENTITY": str(keys / "backup.key"), "TARGET": target,
               "PG_BIN": str(build.bindir), "SIGNER": str(signer), "PGHOST": "127.0.0.1",
               "PGPORT": str(bproject.server.port), "PGUSER": "cuisine", "PGPASSFILE": str(bproject.server.passfile),
               "PGDATABASE": "postgres"}
    result = subprocess.run(["bash", "-c", doc_commands()], env=environ, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    bproject.databases["by_hand"] = target
    assert bproject.fingerprints("by_hand") == bproject.fingerprints("production")
    # The same openssl check refuses a changed manifest before anything is restored.
    changed = tmp_path / "changed"
    changed.mkdir()
    for path in folder.iterdir():
        (changed / path.name).write_bytes(path.read_bytes())
    manifest = changed / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"type":"logical"', b'"type":"logicaL"'))
    refused = subprocess.run(["bash", "-c", doc_commands()], env={**environ, "BACKUP": str(changed),
                                                                   "TARGET": target + "_2"},
                             capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode != 0 and "Signature Verification Failure" in refused.stdout + refused.stderr
    with bproject.server.admin() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [target + "_2"]).fetchone() == (0,)
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(target)))

"""A flipped byte in any object, a missing object, a truncated manifest or the wrong age identity: verification
fails naming the object, restores refuse, and nothing is half-restored."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from backup_fixtures import BackupProject, make_keys

from cuisine_db.storage import Repository, open_repository


def repository(project: BackupProject) -> Repository:
    settings = project.settings
    return open_repository(settings, settings.env("production"))


def flip(key: str) -> Callable[[Repository], None]:
    def damage(repo: Repository) -> None:
        data = bytearray(repo.get_bytes(key))
        data[len(data) // 2] ^= 0x08
        repo.put_bytes(key, bytes(data))
    return damage


def truncate(key: str) -> Callable[[Repository], None]:
    return lambda repo: repo.put_bytes(key, repo.get_bytes(key)[:-40])


def remove(key: str) -> Callable[[Repository], None]:
    return lambda repo: repo.delete([key])


def leftovers(project: BackupProject, env: str) -> list[object]:
    result = project.cli("restore", "leftovers", "--env", env, "--json")
    assert result.returncode == 0, result.stderr
    found: list[object] = json.loads(result.stdout)
    return found


@pytest.mark.parametrize("server", [14], indirect=True)
def test_damage_fails_verification_naming_the_object_and_restores_refuse(bproject: BackupProject,
                                                                         backend: str) -> None:
    name = bproject.backup("production", "logical")
    good = bproject.cli("backup", "verify", name)
    assert good.returncode == 0, good.stderr
    listed = bproject.backups("production")
    assert listed[0]["verification"]["ok"] is True
    # development holds a restored copy; every failed restore below must leave it exactly so.
    assert bproject.cli("restore", "database", "--env", "development", "--backup", name).returncode == 0
    before = bproject.fingerprints("development")
    assert bproject.cli("restore", "drop-leftover", "--env", "development",
                        str(leftovers(bproject, "development")[0]["name"])).returncode == 0  # type: ignore[index]

    repo = repository(bproject)
    manifest = json.loads(repo.get_bytes(f"backups/{name}/manifest.json"))
    data = max((o for o in manifest["objects"] if o["table"]), key=lambda o: o["size"])
    small = min((o for o in manifest["objects"] if o["table"]), key=lambda o: o["size"])
    folder = f"backups/{name}/"
    cases = {
        "data": (flip(folder + data["name"]), folder + data["name"]),
        "missing": (remove(folder + small["name"]), folder + small["name"]),
    }
    if backend == "file":
        cases |= {
            "toc": (flip(folder + "toc.dat.zst.age"), folder + "toc.dat.zst.age"),
            "manifest": (flip(folder + "manifest.json"), folder + "manifest.json"),
            "truncated manifest": (truncate(folder + "manifest.json"), folder + "manifest.json"),
        }
    if backend == "s3":
        del cases["missing"]  # the other cases behave alike on both; the S3 run checks a changed object
    for case, (damage, key) in cases.items():
        saved = {o.key: repo.get_bytes(o.key) for o in repo.list(folder)
                 if not o.key.endswith(("verification.json", "verification.json.sig"))}  # the record and its signature
        damage(repo)
        verified = bproject.cli("backup", "verify", name)
        assert verified.returncode == 1, (case, verified.stderr)
        assert key in verified.stderr, (case, verified.stderr)
        restored = bproject.cli("restore", "database", "--env", "development", "--backup", name)
        assert restored.returncode != 0, case
        assert bproject.fingerprints("development") == before, case
        assert leftovers(bproject, "development") == [], case
        if case == "data":
            table = data["table"].split(".")[1]
            partial = bproject.cli("restore", "tables", "--env", "development", "--backup", name, "--tables", table)
            assert partial.returncode == 1 and key in partial.stderr
            assert bproject.fingerprints("development") == before
        for saved_key, content in saved.items():
            repo.put_bytes(saved_key, content)
    assert bproject.backups("production")[0]["verification"]["ok"] is False  # the last failure is recorded
    if backend == "s3":
        return

    # The wrong identity: every object is refused, the first one named.
    wrong = make_keys(bproject.root / "wrong-keys")
    config = bproject.root / "wrong.toml"
    config.write_text(bproject.config.read_text().replace(str(bproject.keys.identity_file), str(wrong.identity_file)))
    other = {"CUISINE_DB_CONFIG": str(config)}
    verified = bproject.cli("backup", "verify", name, extra_env=other)
    assert verified.returncode == 1 and "no matching key" in verified.stderr and folder in verified.stderr
    restored = bproject.cli("restore", "database", "--env", "development", "--backup", name, extra_env=other)
    assert restored.returncode == 1 and "no matching key" in restored.stderr
    assert bproject.fingerprints("development") == before
    assert leftovers(bproject, "development") == []
    assert bproject.cli("backup", "verify", name).returncode == 0


@pytest.mark.parametrize("server", [18], indirect=True)
def test_damage_stops_a_restore_that_hands_pg_restore_the_stored_zstd_frames(bproject: BackupProject) -> None:
    # pg_restore 16+ gets the data as stored zstd frames and does not itself notice a frame cut short: the
    # checks on this side (age, sha256, the complete frame, the rows) must still stop the restore.
    name = bproject.backup("production", "logical")
    assert bproject.cli("restore", "database", "--env", "development", "--backup", name).returncode == 0
    before = bproject.fingerprints("development")
    assert before == bproject.fingerprints("production")
    assert bproject.cli("restore", "drop-leftover", "--env", "development",
                        str(leftovers(bproject, "development")[0]["name"])).returncode == 0  # type: ignore[index]
    repo = repository(bproject)
    manifest = json.loads(repo.get_bytes(f"backups/{name}/manifest.json"))
    data = max((o for o in manifest["objects"] if o["table"]), key=lambda o: o["size"])
    key = f"backups/{name}/{data['name']}"
    original = repo.get_bytes(key)
    for damage in (flip(key), truncate(key)):
        damage(repo)
        restored = bproject.cli("restore", "database", "--env", "development", "--backup", name)
        assert restored.returncode == 1 and key in restored.stderr, restored.stderr
        assert bproject.fingerprints("development") == before
        assert leftovers(bproject, "development") == []
        repo.put_bytes(key, original)

"""No secret (the database password, the S3 secret key, the age identity) reaches a child's argv, the output, the
journal, the repository or the server's log, through backup, verify, restore, maintenance and archives."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import pytest
from backup_fixtures import S3_SECRET, BackupProject
from psycopg import sql

from cuisine_db.postgres.local import cluster_for

DB_PASSWORD = "Db-Pa55-" + uuid.uuid4().hex


def watch_argv(stop: threading.Event, seen: list[str]) -> None:
    while not stop.is_set():
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as handle:
                        seen.append(handle.read().replace(b"\0", b" ").decode(errors="replace"))
                except OSError:
                    continue


@pytest.mark.parametrize("server", [14], indirect=True)
@pytest.mark.parametrize("backend", ["s3"], indirect=True)
def test_no_secret_reaches_argv_output_journal_repository_or_logs(bproject: BackupProject, backend: str) -> None:
    role = f"ops_{uuid.uuid4().hex[:8]}"
    with bproject.server.admin() as conn:
        # Set as a SCRAM verifier computed here, so not even the test's own statement carries the password.
        verifier = conn.pgconn.encrypt_password(DB_PASSWORD.encode(), role.encode(), b"scram-sha-256").decode()
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(sql.Identifier(role),
                                                                              sql.Literal(verifier)))
    identity_secret = bproject.keys.identity_file.read_text().splitlines()[-1]
    text = bproject.config.read_text()
    production = bproject.databases["production"]
    text = text.replace(f'user=cuisine dbname={production}"\npassfile = "{bproject.server.passfile}"',
                        f'user={role} dbname={production}"\npassword_env = "CUISINE_TEST_DB_PASSWORD"')
    text = text.replace(f'identity_file = "{bproject.keys.identity_file}"', 'identity_env = "CUISINE_TEST_AGE_KEY"')
    bproject.config.write_text(text)
    bproject.environ |= {"CUISINE_TEST_DB_PASSWORD": DB_PASSWORD, "CUISINE_TEST_AGE_KEY": identity_secret}
    secrets = (DB_PASSWORD, identity_secret, S3_SECRET)

    seen: list[str] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_argv, args=(stop, seen))
    watcher.start()
    try:
        results = [bproject.cli("backup", "create", "--env", "production", "--type", "logical")]
        name = bproject.backups("production")[0]["name"]
        results += [
            bproject.cli("backup", "verify", name),
            bproject.cli("restore", "database", "--env", "development", "--backup", name),
            bproject.cli("restore", "test", "--env", "staging", "--backup", name),
            bproject.cli("backup", "list", "--env", "production", "--json"),
            bproject.cli("env", "show", "--env", "production"),
            bproject.cli("maintenance", "status", "--env", "production"),
            # db-archive-data: pg_dump of the table's schema, the rows through the pipeline, and back.
            bproject.cli("archive", "create", "--env", "production", "--table", "executions", "--older-than", "365d",
                         "--yes"),
            bproject.cli("archive", "list", "--env", "production", "--json"),
            bproject.cli("archive", "verify", "latest", "--env", "production"),
            bproject.cli("archive", "restore", "--env", "production", "--archive", "latest", "--yes"),
        ]
    finally:
        stop.set()
        watcher.join()
    for result in results:
        assert result.returncode == 0, result.stderr
    assert any("pg_dump" in line for line in seen) and any("pg_restore" in line for line in seen)
    files = [*Path(bproject.root / ".cuisine").rglob("*"), *cluster_for(bproject.server.settings,
                                                                        bproject.server.env).datadir.joinpath(
        "log").glob("*")]
    stored = [bproject.settings.env("production")]
    from cuisine_db.storage import open_repository

    repository = open_repository(bproject.settings, stored[0])
    objects = [repository.get_bytes(info.key) for info in repository.list("") if info.key.endswith(".json")]
    assert any(info.key.startswith("archives/") for info in repository.list("archives/"))
    for secret in secrets:
        assert not any(secret in line for line in seen), "a secret reached a child's argv"
        for result in results:
            assert secret not in result.stdout + result.stderr
        for path in files:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
        assert not any(secret.encode() in data for data in objects)
    with bproject.server.admin() as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))

"""Bad input to the backup targets, as an operator would type it: one clear line, exit 2, nothing run."""

from __future__ import annotations

from pathlib import Path

import pytest
from backup_fixtures import BackupProject


def databases(project: BackupProject) -> list[str]:
    with project.server.admin() as conn:
        return sorted(row[0] for row in conn.execute("SELECT datname FROM pg_database"))


@pytest.mark.parametrize("server", [14], indirect=True)
def test_bad_input_is_one_line_exit_2_and_nothing_runs(bproject: BackupProject) -> None:
    name = bproject.backup("production", "tables", "--tables", "users")
    before = (bproject.repository_keys(), databases(bproject), bproject.fingerprints("production", ("users",)))
    cases = [
        (["db-backup", "env=production", "type=bogus"], "unknown backup type 'bogus'"),
        (["db-backup", "env=production", "type=tables", "tables=users';touch /tmp/pwned;'"], "bad table name"),
        (["db-backup", "env=production", "type=tables", 'tables="users"'], "bad table name"),
        (["db-backup", "env=production", "type=tables", "tables=users,nope"], "has no table nope"),
        (["db-backup", "env=production", "type=logical", "tables=users"], "tables= goes with type=tables"),
        (["db-restore", "env=development", "backup=../../etc/passwd"], "bad backup name '../../etc/passwd'"),
        (["db-restore", "env=development"], "give the backup"),
        (["db-restore", "env=development", "backup=production-logical-20200101T000000Z"], "no backup named"),
        (["db-restore-tables", "env=development", f"backup={name}", "tables=users; DROP TABLE users"],
         "bad table name"),
        (["db-restore-tables", "env=development", f"backup={name}", "tables=recipes"], "holds no rows of table"),
        (["db-verify-backup", "backup=../x"], "bad backup name '../x'"),
        (["db-test-restore", "env=staging", "backup=..%2Fx"], "bad backup name"),
    ]
    for target, expected in cases:
        result = bproject.make(*target)
        lines = [line for line in result.stderr.splitlines() if not line.startswith("make")]
        assert len(lines) == 1, (target, result.stderr)
        assert lines[0].startswith("error: ") and expected in lines[0], (target, lines)
        assert "Error 2" in result.stderr, (target, result.stderr)
    assert (bproject.repository_keys(), databases(bproject),
            bproject.fingerprints("production", ("users",))) == before
    assert not Path("/tmp/pwned").exists()

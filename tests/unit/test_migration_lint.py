"""The migration linter: each rule fires on the risky form and stays quiet on the safe one."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuisine_db.migrations.files import parse
from cuisine_db.migrations.lint import lint

REPO_MIGRATIONS = Path(__file__).resolve().parents[2] / "db" / "migrations"


def checks(tmp_path: Path, up: str, options: str = "") -> list[str]:
    path = tmp_path / "20250101000000_change.sql"
    path.write_text(f"-- migrate:up{options}\n{up}\n-- migrate:down\n")
    return [finding.check for finding in lint(parse(path))]


@pytest.mark.parametrize(("risky", "safe", "check"), [
    ("CREATE INDEX i ON recipes (user_id, created_at);",
     "CREATE INDEX CONCURRENTLY i ON recipes (user_id, created_at);", "index-without-concurrently"),
    ("ALTER TABLE recipes ADD CONSTRAINT r FOREIGN KEY (user_id) REFERENCES users (id);",
     "ALTER TABLE recipes ADD CONSTRAINT r FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
     "constraint-validated-under-lock"),
    ("ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);",
     "ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_email_idx;", "unique-constraint-builds-index"),
    ("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;",
     "set-not-null-scans-table"),
    ("ALTER TABLE users ALTER COLUMN display_name TYPE varchar(50);", "ALTER TABLE users ADD COLUMN nick text;",
     "column-type-rewrites-table"),
    ("ALTER TABLE users DROP COLUMN profile;", "ALTER TABLE users ADD COLUMN locale text;", "drops-data"),
    ("DROP TABLE kitchens;", "DROP INDEX CONCURRENTLY IF EXISTS nothing_idx;", "drops-data"),
    ("ALTER TABLE users RENAME COLUMN email TO mail;", "COMMENT ON COLUMN users.email IS 'x';",
     "rename-breaks-running-code"),
    ("VACUUM FULL users;", "VACUUM users;", "rewrites-under-exclusive-lock"),
])
def test_rule_fires_on_risky_and_not_on_safe(tmp_path: Path, risky: str, safe: str, check: str) -> None:
    assert check in checks(tmp_path, risky)
    assert check not in checks(tmp_path, safe, " transaction:false")


def test_tables_created_in_the_same_migration_are_exempt(tmp_path: Path) -> None:
    assert checks(tmp_path, "CREATE TABLE n (a int);\nCREATE INDEX n_a_idx ON n (a);\n"
                            "ALTER TABLE n ALTER COLUMN a SET NOT NULL;") == []


def test_concurrently_inside_a_transaction_is_an_error(tmp_path: Path) -> None:
    assert "cannot-run-in-transaction" in checks(tmp_path, "CREATE INDEX CONCURRENTLY i ON recipes (title);")
    assert checks(tmp_path, "CREATE INDEX CONCURRENTLY i ON recipes (title);", " transaction:false") == []


def test_unparseable_text_is_reported(tmp_path: Path) -> None:
    assert checks(tmp_path, "ALTER TABLE recipes ADD COLUM broken text;") == ["does-not-parse"]


def test_the_cuisine_schema_migrations_are_clean() -> None:
    for path in sorted(REPO_MIGRATIONS.glob("*.sql")):
        assert lint(parse(path)) == [], path.name

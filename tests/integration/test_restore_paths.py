"""Table restores (one transaction, the rest untouched), test restores, verification and leftovers, through the
runbook's make targets."""

from __future__ import annotations

import json

import pytest
from backup_fixtures import TABLES, BackupProject


@pytest.mark.parametrize("server", [14], indirect=True)
def test_a_table_restore_is_all_or_nothing_and_leaves_the_other_tables_alone(bproject: BackupProject) -> None:
    name = bproject.backup("production", "logical")
    backup = bproject.fingerprints("production")
    refused = bproject.make("db-restore-tables", "env=production", f"backup={name}", "tables=users")
    assert "needs confirmation" in refused.stderr and "Error 4" in refused.stderr
    with bproject.connect("production") as conn:
        conn.execute("UPDATE users SET display_name = 'damaged'")
        conn.execute("DROP INDEX recipes_user_id_idx")
        conn.execute("INSERT INTO ingredients (name, category, default_unit) VALUES ('late spice', 'spice', 'g')")
        conn.execute("INSERT INTO users (id, email, display_name) VALUES (5000, 'late@x', 'Late')")
        conn.execute("INSERT INTO recipes (user_id, title) VALUES (5000, 'after the backup')")
    changed = bproject.fingerprints("production")

    # users alone would orphan the recipe written after the backup: refused, and nothing changed at all.
    broken = bproject.make("db-restore-tables", "env=production", "backup=latest", "tables=users", "yes=1")
    assert broken.returncode != 0 and "foreign key" in broken.stderr and "nothing was changed" in broken.stderr
    assert bproject.fingerprints("production") == changed

    restored = bproject.make("db-restore-tables", "env=production", "backup=latest", "tables=users,recipes", "yes=1")
    assert restored.returncode == 0, restored.stderr
    assert f"using backup {name} (newest logical backup of production holding users, recipes)" in restored.stderr
    assert "recreated recipes_user_id_idx" in restored.stderr
    after = bproject.fingerprints("production")
    assert after["users"] == backup["users"] and after["recipes"] == backup["recipes"]
    untouched = [t for t in TABLES if t not in ("users", "recipes")]
    assert {t: after[t] for t in untouched} == {t: changed[t] for t in untouched}
    with bproject.connect("production") as conn:
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'recipes_user_id_idx'"
                            ).fetchone() == (1,)


@pytest.mark.parametrize("server", [14], indirect=True)
def test_test_restore_verification_listing_and_leftovers(bproject: BackupProject) -> None:
    name = bproject.backup("production", "logical")
    tested = bproject.make("db-test-restore", "env=staging", f"backup={name}")
    assert tested.returncode == 0, tested.stderr
    assert "(the measured recovery time)" in tested.stdout and "all matching the manifest" in tested.stdout
    with bproject.connect("staging") as conn:  # staging itself is untouched, the scratch database gone
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    assert bproject.cli("restore", "leftovers", "--env", "staging", "--json").stdout.strip() == "[]"
    assert bproject.make("db-verify-backup", f"backup={name}").returncode == 0
    listed = bproject.make("db-backups", "env=production")
    assert name in listed.stdout and "ok" in listed.stdout
    entry = bproject.backups("production")[0]
    assert entry["verification"]["ok"] and entry["test_restore"]["ok"]
    assert entry["test_restore"]["details"]["env"] == "staging" and entry["test_restore"]["seconds"] > 0

    assert bproject.make("db-restore", "env=development", f"backup={name}").returncode == 0
    kept = json.loads(bproject.cli("restore", "leftovers", "--env", "development", "--json").stdout)
    assert [item["kind"] for item in kept] == ["replaced by a restore"]
    not_a_leftover = bproject.cli("restore", "drop-leftover", "--env", "development", bproject.databases["production"])
    assert not_a_leftover.returncode == 2
    dropped = bproject.cli("restore", "drop-leftover", "--env", "development", kept[0]["name"])
    assert dropped.returncode == 0, dropped.stderr
    assert bproject.cli("restore", "leftovers", "--env", "development", "--json").stdout.strip() == "[]"


def test_dropping_a_leftover_needs_confirmation_whoever_calls_the_service(bproject: BackupProject) -> None:
    """backup/leftovers.drop_named owns the protected-environment rule, not the CLI: called directly on production
    without confirmation it refuses (exit 4) and the database stays."""
    from psycopg import sql

    from cuisine_db.backup import leftovers
    from cuisine_db.errors import EXIT_REFUSED, RefusedError

    settings, production = bproject.settings, bproject.settings.env("production")
    name = f"{bproject.databases['production']}_pre_restore_20250101T000000Z"
    with bproject.connect("production") as conn:
        conn.autocommit = True
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    assert [item.name for item in leftovers.find(settings, production)] == [name]
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        leftovers.drop_named(settings, production, name)
    assert refused.value.exit_code == EXIT_REFUSED
    with pytest.raises(RefusedError, match="did not match"):
        leftovers.drop_named(settings, production, name, ask=lambda _: "development")
    assert [item.name for item in leftovers.find(settings, production)] == [name]
    assert leftovers.drop_named(settings, production, name, ask=lambda _: "production").name == name
    assert leftovers.find(settings, production) == []

"""The restore entry point checks what an operator typed itself, whoever calls it (not only the CLI): a bad
recovery target or table name for db-apply-logs, db-find-target, and restore open with nothing laid down, are bad
input (exit 2) journaled as failed, before anything is read or changed. No server: the environment points at a
closed port."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuisine_db.backup import find_target, restore_service
from cuisine_db.config import Settings, load_settings
from cuisine_db.errors import UsageError
from cuisine_db.ops import journal


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = tmp_path / "cuisine-db.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\ndefault_env = "staging"\n'
                      '[environments.staging]\ndsn = "host=127.0.0.1 port=1 dbname=x"\n')
    return load_settings({"CUISINE_DB_CONFIG": str(config)})


@pytest.mark.parametrize(("typed", "said"), [
    (("2026-03-15 12:00:00", None, None), "has no time zone"),
    ((None, "0/3000060", "900"), ""),
    ((None, "not-an-lsn", None), "lsn"),
])
def test_apply_logs_refuses_a_bad_target_as_bad_input_and_journals_it(
        settings: Settings, typed: tuple[str | None, str | None, str | None], said: str) -> None:
    env = settings.env("staging")
    target, lsn, xid = typed
    with pytest.raises(UsageError) as caught:
        restore_service.apply_logs(settings, env, target, lsn, xid)
    assert caught.value.exit_code == 2 and said in caught.value.message
    entry = journal.read(journal.journal_path(settings, env))[-1]
    assert entry["command"] == "apply-logs" and entry["outcome"] == "failed"
    assert entry["arguments"] == {"target": target, "lsn": lsn, "xid": xid, "inclusive": True, "force": False,
                                  "trust_unsigned": False}
    assert "details" not in entry
    assert not (settings.env_dir(env) / "restore.json").exists()


def test_restore_open_with_nothing_laid_down_is_bad_input_and_journaled(settings: Settings) -> None:
    env = settings.env("staging")
    with pytest.raises(UsageError) as caught:
        restore_service.open_pending(settings, env)
    assert caught.value.message == "no physical restore is waiting on staging"
    entry = journal.read(journal.journal_path(settings, env))[-1]
    assert entry["command"] == "restore open" and entry["outcome"] == "failed"


def test_find_target_refuses_a_bad_table_name_before_reading_anything(settings: Settings) -> None:
    with pytest.raises(UsageError, match="bad table name 'users;drop'"):
        find_target.find(settings, settings.env("staging"), table="users;drop")

"""The upgrade's confirmations and journal lines live in upgrade/commands.py, not in the CLI: any caller of
`commands.upgrade` on a protected environment is refused (exit 4) before anything is touched when no one can be
asked, and a wrong answer refuses a rollback; each refusal is journaled as the CLI's was."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuisine_db.config import Settings, load_settings
from cuisine_db.errors import RefusedError, UsageError
from cuisine_db.ops.journal import journal_path, read
from cuisine_db.upgrade import commands


def _settings(tmp_path: Path) -> Settings:
    config = tmp_path / "cuisine-db.toml"
    config.write_text("[environments.production]\nport = 56993\npostgres_version = 14\n"
                      "[environments.scratch]\nport = 56994\npostgres_version = 14\n")
    return load_settings({"CUISINE_DB_CONFIG": str(config)})


def _journal(settings: Settings, env: str) -> list[tuple[str, object, str]]:
    return [(line["command"], line["arguments"], line["outcome"])
            for line in read(journal_path(settings, settings.env(env)))]


def test_no_one_to_ask_refuses_an_upgrade_of_a_protected_environment_up_front(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    production = settings.env("production")
    assert production.protected
    with pytest.raises(RefusedError, match="no terminal to ask") as refused:
        commands.upgrade(settings, production, commands.UpgradeAsked(to=18), ask=None)
    assert refused.value.exit_code == 4
    assert _journal(settings, "production") == [
        ("upgrade", {"to": 18, "method": None, "check": False, "rehearsed": None}, "refused")]
    assert not (settings.env_dir(production) / "upgrade").exists()


def test_a_rollback_needs_the_environments_name_typed(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    production = settings.env("production")
    asked: list[str] = []

    def ask(action: str) -> str:
        asked.append(action)
        return "scratch"

    with pytest.raises(RefusedError, match="did not match"):
        commands.upgrade(settings, production, commands.UpgradeAsked(rollback=True), ask=ask)
    assert asked == ["rollback of the upgrade"]
    with pytest.raises(RefusedError, match="no terminal to ask"):
        commands.upgrade(settings, production, commands.UpgradeAsked(finish=True), ask=None)
    assert _journal(settings, "production") == [("upgrade rollback", {}, "refused"),
                                                ("upgrade finish", {}, "refused")]


def test_separate_steps_together_are_bad_input_that_writes_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    scratch = settings.env("scratch")
    with pytest.raises(UsageError, match="separate steps"):
        commands.upgrade(settings, scratch, commands.UpgradeAsked(check=True, rollback=True), yes=True)
    assert not journal_path(settings, scratch).exists()

"""The restore entry point (backup/restore_service.py) enforces its rails whoever calls it, not only the CLI: a full
restore of a protected environment needs maintenance mode, then the operator's confirmation, and a refusal changes
nothing."""

from __future__ import annotations

import pytest
from backup_fixtures import BackupProject

from cuisine_db.backup import leftovers, restore_service
from cuisine_db.errors import EXIT_REFUSED, RefusedError
from cuisine_db.ops import maintenance
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journal_path, read


def test_a_protected_full_restore_called_directly_is_refused_without_maintenance_mode_or_confirmation(
        bproject: BackupProject) -> None:
    settings = bproject.settings
    production = settings.env("production")
    assert production.protected
    name = bproject.backup("production", "logical")
    with bproject.connect("production") as conn:
        conn.execute("DELETE FROM recipe_step_ingredients")  # what a restore of the backup would bring back
    before = bproject.fingerprints("production")
    asked: list[str] = []

    def answer(typed: str) -> Ask:
        def ask(action: str) -> str:
            asked.append(action)
            return typed
        return ask

    # Confirmed (yes=True) but not in maintenance mode: refused before anything is touched; nobody is even asked.
    with pytest.raises(RefusedError, match="needs maintenance mode") as refused:
        restore_service.restore_database(settings, production, name, yes=True,
                                         ask=answer("production"))
    assert refused.value.exit_code == EXIT_REFUSED == 4
    assert asked == []
    assert bproject.fingerprints("production") == before
    assert leftovers.find(settings, production) == []
    last = read(journal_path(settings, production))[-1]
    assert (last["command"], last["outcome"], last["arguments"]["backup"]) == ("restore", "refused", name)

    # In maintenance mode, without yes and with no one to ask (no terminal): refused, nothing restored.
    maintenance.enable(settings, production, "restore service test")
    try:
        with pytest.raises(RefusedError, match="needs confirmation"):
            restore_service.restore_database(settings, production, name)
        # A wrong answer is refused too; the question named the backup.
        with pytest.raises(RefusedError, match="did not match"):
            restore_service.restore_database(settings, production, name,
                                             ask=answer("staging"))
        assert len(asked) == 1 and name in asked[0]
        assert bproject.fingerprints("production") == before
        assert leftovers.find(settings, production) == []
    finally:
        maintenance.disable(settings, production)
    assert [line["outcome"] for line in read(journal_path(settings, production))
            if line["command"] == "restore"] == ["refused", "refused", "refused"]

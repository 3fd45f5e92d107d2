"""schedule install writes the cron file or the systemd units where it is told and journals it, whoever calls
ops/schedule.install; a format it does not know is bad input that writes nothing, the journal included."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuisine_db.config import load_settings
from cuisine_db.errors import UsageError
from cuisine_db.ops import schedule
from cuisine_db.ops.journal import journal_path, read


def test_install_writes_what_it_says_and_journals_it(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.staging]\nport = 56995\n'
                      '[environments.staging.schedule]\nfull_backup_at = "02:30"\n')
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("staging")
    with pytest.raises(UsageError, match="unknown schedule format 'anacron'"):
        schedule.install(settings, env, kind="anacron", target=tmp_path)
    assert not journal_path(settings, env).exists() and sorted(tmp_path.iterdir()) == [config]
    (cron_folder := tmp_path / "cron.d").mkdir()
    [written] = schedule.install(settings, env, kind="cron", target=cron_folder)
    assert written == cron_folder / "cuisine-db-staging" and "30 2 * * *" in written.read_text()
    (units := tmp_path / "systemd").mkdir()
    made = schedule.install(settings, env, kind="systemd", target=units)
    assert made and all(path.parent == units and path.exists() for path in made)
    lines = read(journal_path(settings, env))
    assert [(line["command"], line["arguments"], line["outcome"]) for line in lines] == [
        ("schedule install", {"format": "cron", "target": str(cron_folder)}, "ok"),
        ("schedule install", {"format": "systemd", "target": str(units)}, "ok")]

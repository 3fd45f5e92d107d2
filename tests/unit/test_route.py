"""postgres/route.py: a remote environment follows a logical upgrade's route only while cuisine-db.toml still names
the server the cutover left."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuisine_db.config import load_settings
from cuisine_db.errors import UnavailableError
from cuisine_db.postgres import route
from cuisine_db.postgres.connect import client_environ

OLD = "host=db14.internal port=5432 user=cuisine_ops dbname=cuisine"
NEW = "host=db18.internal port=5433 user=cuisine_ops dbname=cuisine"


def test_route_applies_while_the_file_names_the_old_server(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text(f'[environments.far]\ndsn = "{OLD}"\n')
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("far")
    assert route.dsn_of(settings, env) == OLD
    route.save(settings, env, route.Route(env="far", dsn=NEW, replaces=OLD, major=18, since="2026-12-06T01:00:00"))
    assert route.dsn_of(settings, env) == NEW
    assert client_environ(settings, env)["PGHOST"] == "db18.internal"  # pg_dump and psql follow it too
    assert route.path(settings, env).stat().st_mode & 0o077 == 0

    config.write_text('[environments.far]\ndsn = "host=db19.internal user=cuisine_ops dbname=cuisine"\n')
    moved = load_settings({"CUISINE_DB_CONFIG": str(config)})
    assert route.dsn_of(moved, moved.env("far")) == "host=db19.internal user=cuisine_ops dbname=cuisine"

    route.forget(settings, env)
    assert route.dsn_of(settings, env) == OLD


def test_a_damaged_route_is_an_error_not_the_old_server(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text(f'[environments.far]\ndsn = "{OLD}"\n')
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("far")
    settings.env_dir(env).mkdir(parents=True)
    route.path(settings, env).write_text("{not json")
    with pytest.raises(UnavailableError):
        route.dsn_of(settings, env)

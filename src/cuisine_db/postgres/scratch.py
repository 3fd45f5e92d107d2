"""Throwaway clusters for checks that must not touch a real environment (migrate verify, test restores)."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.postgres.local import cluster_for, ensure_up, os_user_of
from cuisine_db.postgres.ports import free_port


def environment_copy(settings: Settings, env: Environment, name: str, *, major: int, what: str,
                     **overrides: Any) -> tuple[Settings, Environment]:
    """The settings plus `name`: a local, unprotected copy of `env` on a free port that reads env's repository and
    runs as env's own OS user (the copy holds env's data and replays env's WAL archive, which only that user can
    read). `what` names the work in the refusal when `name` is taken; `overrides` set further fields."""
    if name in settings.environments:
        raise UsageError(f"{name} is an environment of cuisine-db.toml: {what} needs the name for its copy",
                         hint="rename that environment")
    copy = env.model_copy(update={
        "name": name, "protected": False, "port": free_port(), "postgres_version": major, "dsn": None,
        "password_env": None, "passfile": None, "roles": {},
        "os_user": os_user_of(settings, env) if env.is_local else None, **overrides})
    return dataclasses.replace(settings, environments={**settings.environments, name: copy}), copy


@contextmanager
def scratch_environment(
    settings: Settings, major: int, name: str = "scratch"
) -> Iterator[tuple[Settings, Environment]]:
    """A new local cluster of the given major version, destroyed on exit whatever happens."""
    with tempfile.TemporaryDirectory(prefix="cuisine-db-scratch-") as folder:
        env = Environment(name=name, port=free_port(), postgres_version=major,
                          server_settings={"fsync": False, "synchronous_commit": False})
        scratch = dataclasses.replace(settings, state_dir=Path(folder), environments={name: env},
                                      default_env=name, schema_file=Path(folder) / "schema.sql")
        try:
            ensure_up(scratch, env)
            yield scratch, env
        finally:
            cluster_for(scratch, env).destroy()

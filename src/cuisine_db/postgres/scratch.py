"""Throwaway clusters for checks that must not touch a real environment (migrate verify, test restores)."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port


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

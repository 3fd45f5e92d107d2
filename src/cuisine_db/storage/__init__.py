"""Backup repositories (a local folder or S3-compatible storage) and the stream pipeline (zstd -> age -> sha256)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import ConfigError
from cuisine_db.storage.base import (
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    ObjectWriter,
    Readable,
    Repository,
    RepositoryError,
    RepositoryFull,
)
from cuisine_db.storage.local import LocalRepository

__all__ = [
    "LocalRepository",
    "ObjectExists",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectWriter",
    "Readable",
    "Repository",
    "RepositoryError",
    "RepositoryFull",
    "open_repository",
    "repository_url",
]


def repository_url(settings: Settings, env: Environment) -> str:
    """The environment's repository as a URL (file:// or s3://), the default one under the state folder if unset."""
    configured = env.backup.repository
    if configured is None:
        return (settings.state_dir / "repository").resolve().as_uri()
    if configured.startswith("s3://"):
        return configured.rstrip("/")
    if configured.startswith("file://"):
        return configured
    path = Path(configured).expanduser()
    return (path if path.is_absolute() else settings.root / path).resolve().as_uri()


def open_repository(settings: Settings, env: Environment) -> Repository:
    """The repository an environment's backups go to."""
    url = repository_url(settings, env)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"environments.{env.name}.backup.repository: file URLs name a local path ({url})")
        return LocalRepository(Path(unquote(parsed.path)))
    if not parsed.netloc:
        raise ConfigError(f"environments.{env.name}.backup.repository: {url} names no bucket")
    from cuisine_db.storage.s3 import S3Location, S3Repository

    for variable in (env.backup.s3_access_key_env, env.backup.s3_secret_key_env):
        if variable and settings.secret(variable) is None:
            raise ConfigError(f"environments.{env.name}.backup names ${variable} for S3 credentials, "
                              "but it is not set", hint=f"export {variable}=... before running the command")

    return S3Repository(S3Location(
        bucket=parsed.netloc,
        prefix=parsed.path.strip("/"),
        endpoint=env.backup.s3_endpoint,
        region=env.backup.s3_region,
        access_key=settings.secret(env.backup.s3_access_key_env),
        secret_key=settings.secret(env.backup.s3_secret_key_env),
    ))

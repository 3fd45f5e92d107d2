"""Backup repositories (a local folder or S3-compatible storage) and the stream pipeline (zstd -> age -> sha256)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

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

if TYPE_CHECKING:  # the configuration (pydantic) stays off the WAL archiving path, which imports this package
    from cuisine_db.config import Environment, Settings

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
    "open_url",
    "repository_url",
    "resolve_url",
]


def resolve_url(configured: str | None, state_dir: Path, root: Path) -> str:
    """A configured repository as a URL (file:// or s3://): unset is <state_dir>/repository, a relative path is
    relative to the configuration file's folder (`root`)."""
    if configured is None:
        return (state_dir / "repository").resolve().as_uri()
    if configured.startswith("s3://"):
        return configured.rstrip("/")
    if configured.startswith("file://"):
        return configured
    path = Path(configured).expanduser()
    return (path if path.is_absolute() else root / path).resolve().as_uri()


def repository_url(settings: Settings, env: Environment) -> str:
    """The environment's repository as a URL (file:// or s3://), the default one under the state folder if unset."""
    return resolve_url(env.backup.repository, settings.state_dir, settings.root)


def open_url(url: str, where: str, *, endpoint: str | None = None, region: str | None = None,
             access_key: str | None = None, secret_key: str | None = None, lock_days: int | None = None) -> Repository:
    """A repository by URL; `where` names the setting it came from, for errors."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"{where}: file URLs name a local path ({url})")
        return LocalRepository(Path(unquote(parsed.path)))
    if not parsed.netloc:
        raise ConfigError(f"{where}: {url} names no bucket")
    from cuisine_db.storage.s3 import S3Location, S3Repository

    return S3Repository(S3Location(bucket=parsed.netloc, prefix=parsed.path.strip("/"), endpoint=endpoint,
                                   region=region, access_key=access_key, secret_key=secret_key,
                                   lock_days=lock_days))


def open_repository(settings: Settings, env: Environment) -> Repository:
    """The repository an environment's backups go to."""
    url = repository_url(settings, env)
    if url.startswith("s3://"):
        for variable in (env.backup.s3_access_key_env, env.backup.s3_secret_key_env):
            if variable and settings.secret(variable) is None:
                raise ConfigError(f"environments.{env.name}.backup names ${variable} for S3 credentials, "
                                  "but it is not set", hint=f"export {variable}=... before running the command")
    return open_url(url, f"environments.{env.name}.backup.repository", endpoint=env.backup.s3_endpoint,
                    region=env.backup.s3_region, access_key=settings.secret(env.backup.s3_access_key_env),
                    secret_key=settings.secret(env.backup.s3_secret_key_env), lock_days=env.backup.object_lock_days)

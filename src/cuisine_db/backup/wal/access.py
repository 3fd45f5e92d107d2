"""What `wal push` and `wal fetch` need from cuisine-db.toml, read without the full configuration model.

The archive command runs as the server's OS user with the server's environment, once per segment: it reads the
configuration file it names by absolute path with tomllib (or, when the file is the one it read last time, takes
what it read then from settings_cache) and takes only the environment's repository, encryption keys and WAL
settings. The full CLI (`wal enable`, `wal status`) validates the same file with pydantic; both take the
defaults from wal_defaults.py.

S3 credentials reach the server user by reference, never in argv or postgresql.conf: the variables the
environment names (`s3_access_key_env`, `s3_secret_key_env`) are read from the process's environment, else
from a credentials file (`NAME=value` lines, mode 0600, owned by the server's user) that `wal enable` and
`db-apply-logs` write from the operator's environment: `<state_dir>/<env>/wal-credentials` unless
`wal.credentials_file` says otherwise.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

from cuisine_db.backup.wal import settings_cache
from cuisine_db.errors import ConfigError, RefusedError, UsageError
from cuisine_db.wal_defaults import FETCH_THREADS, PREFETCH, PUSH_BATCH, PUSH_THREADS, SPOOL_MB

SPOOL_FOLDER = "wal-spool"
CREDENTIALS_FILE = "wal-credentials"
LOCK_DAYS_MAX = 36500
# The environment's WAL signing key, its server user's own (made by `wal enable`): the archive command signs each
# file's record with it, so the backup signing key never has to be readable by the server's OS user.
WAL_SIGNING_KEY = "wal-signing.key"
WAL_SIGNING_PUBLIC = "wal-signing.pub"


class WalAccess(NamedTuple):
    """One environment's archive as the archive and restore commands see it. Secrets are values read from
    the environment or the credentials file, and never printed. (A NamedTuple, not a dataclass, to keep
    dataclasses' import off the archive command's path: see storage.base.ObjectInfo.)"""

    env: str
    config_path: Path
    state_dir: Path
    url: str
    s3_endpoint: str | None
    s3_region: str | None
    recipients: tuple[str, ...]
    identity_sources: tuple[Path, ...]
    identity_env: str | None
    compress_level: int
    push_batch: int
    push_threads: int
    prefetch: int
    fetch_threads: int
    spool: Path
    credentials_file: Path
    secrets: dict[str, str]
    s3_access_key_env: str | None
    s3_secret_key_env: str | None
    signing_env: str | None = None
    signing_sources: tuple[Path, ...] = ()
    trusted: tuple[str, ...] = ()
    trusted_files: tuple[Path, ...] = ()
    object_lock_days: int | None = None
    system_area: str | None = None  # the archive area of this system identifier (backup/wal/areas.py)

    @property
    def area(self) -> str:
        """The name WAL keys and records use: the environment's first area, or an upgraded cluster's own."""
        return self.system_area or self.env
    spool_mb: int = SPOOL_MB

    def __repr__(self) -> str:
        return f"WalAccess(env={self.env!r}, url={self.url!r}, config_path={self.config_path!r})"  # no secrets

    def repository(self) -> Any:
        from cuisine_db.storage import open_url

        where = f"environments.{self.env}.backup.repository"
        if self.url.startswith("s3://"):
            for variable in (self.s3_access_key_env, self.s3_secret_key_env):
                if variable and variable not in self.secrets:
                    raise ConfigError(f"{where}: ${variable} is set neither in the server's environment nor in "
                                      f"{self.credentials_file}",
                                      hint=f"run cuisine-db wal enable --env {self.env} with ${variable} exported")
        return open_url(self.url, where, endpoint=self.s3_endpoint, region=self.s3_region,
                        access_key=self.secrets.get(self.s3_access_key_env or ""),
                        secret_key=self.secrets.get(self.s3_secret_key_env or ""), lock_days=self.object_lock_days)

    def parsed_recipients(self) -> list[Any]:
        import pyrage

        if not self.recipients:
            raise UsageError(f"environment {self.env!r} has no encryption recipients",
                             hint="set backup.recipients, or run cuisine-db backup keygen")
        try:
            return [pyrage.x25519.Recipient.from_str(value) for value in self.recipients]
        except Exception:
            raise UsageError(f"environment {self.env!r} has a recipient that is not an age public key") from None

    def signer(self) -> Any:
        """The key that signs this environment's WAL records: `signing_key_env`, else the first readable of the
        environment's WAL signing key, `signing_key_file`, <state_dir>/keys/signing.key."""
        from cuisine_db.storage import signing

        if self.signing_env and os.environ.get(self.signing_env):
            return signing.load_signer(os.environ[self.signing_env], f"${self.signing_env}")
        for path in self.signing_sources:
            if os.access(path, os.R_OK):
                return signing.signer_from_file(path)
        tried = ", ".join([f"${self.signing_env}"] * bool(self.signing_env) + [str(p) for p in self.signing_sources])
        raise UsageError(f"no signing key this user can read for {self.env}'s WAL records (looked at {tried})",
                         hint=f"cuisine-db wal enable --env {self.env} makes the server user's own")

    def trust(self) -> Any:
        """The pinned keys (backup.trusted_signers, else <state_dir>/keys/signing.pub) and the environment's own
        WAL signing key's public half."""
        from cuisine_db.storage import signing

        values = list(self.trusted)
        for path in self.trusted_files:
            values += [value for value in signing.read_public_file(path) if value not in values]
        return signing.trust_of(values)

    def identities(self) -> list[Any]:
        from cuisine_db.storage import keys

        found: list[Any] = []
        if self.identity_env and os.environ.get(self.identity_env):
            found += keys.identities_from_text(os.environ[self.identity_env], f"${self.identity_env}")
        unreadable = []
        for path in self.identity_sources:
            try:
                present = path.exists()
            except PermissionError:  # inside a folder this user cannot search (Path.exists raises on 3.11)
                present = True
            if present and not os.access(path, os.R_OK):
                unreadable.append(str(path))  # another user's key (the operator's): others may serve
            elif present:
                found += keys.identities_from_file(path)
        if not found:
            tried = ", ".join([f"${self.identity_env}"] * bool(self.identity_env) + [str(p) for p in
                                                                                        self.identity_sources])
            cannot = f"; this user cannot read {', '.join(unreadable)}" if unreadable else ""
            raise UsageError(f"no age identity to decrypt the archive with (looked at {tried}){cannot}")
        return found


def _table(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def _number(table: dict[str, Any], name: str, default: int, where: str, low: int = 1) -> int:
    value = table.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 64:
        raise ConfigError(f"{where}.{name} must be a whole number from {low} to 64")
    return value


def _spool_mb(table: dict[str, Any], where: str) -> int:
    value = table.get("spool_mb", SPOOL_MB)
    if not isinstance(value, int) or isinstance(value, bool) or not 16 <= value <= 1 << 20:
        raise ConfigError(f"{where}.spool_mb must be a whole number of MiB from 16 to {1 << 20}")
    return value


def threads(configured: int) -> int:
    """The prefetcher's threads: as configured, or one per core (0)."""
    return configured or min(os.cpu_count() or 4, 64)


def read_credentials(path: Path) -> dict[str, str]:
    """`NAME=value` lines; the file must be private to its owner (it holds S3 keys)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RefusedError(f"credentials file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):o})",
                           hint=f"chmod 600 {path}")
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


def _parse(text: str, config_path: Path, env: str) -> dict[str, Any]:
    import tomllib

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    environments = _table(raw.get("environments"), "environments")
    if env not in environments:
        raise ConfigError(f"{config_path}: no environment {env!r}")
    where = f"environments.{env}"
    settings = _table(environments[env], where)
    backup = _table(settings.get("backup"), f"{where}.backup")
    wal = _table(settings.get("wal"), f"{where}.wal")
    return {"state_dir": raw.get("state_dir", ".cuisine"),
            "backup": {key: backup[key] for key in settings_cache.BACKUP_KEYS if key in backup},
            "wal": {key: wal[key] for key in settings_cache.WAL_KEYS if key in wal}}


def _settings(config_path: Path, env: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """state_dir and the environment's backup and wal tables: from the settings cache when it stands for this very
    file, else parsed (and cached)."""
    try:
        with config_path.open("rb") as handle:
            expected = settings_cache.stamp(config_path, env, os.fstat(handle.fileno()))
            found = settings_cache.lookup(config_path, env, expected)
            if found is None:
                found = _parse(handle.read().decode("utf-8"), config_path, env)
                settings_cache.keep(config_path, env, expected, found)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {config_path} does not exist") from None
    except PermissionError:
        raise ConfigError(f"configuration file {config_path} cannot be read by this user",
                          hint="the server's OS user must be able to read it") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    where = f"environments.{env}"
    return (found.get("state_dir", ".cuisine"), _table(found.get("backup"), f"{where}.backup"),
            _table(found.get("wal"), f"{where}.wal"))


def load(config_path: Path, env: str, *, identity_file: Path | None = None, spool: Path | None = None,
         credentials_file: Path | None = None, system_identifier: str | None = None) -> WalAccess:
    """The environment's archive settings from the configuration file, plus the secrets it refers to; the archive
    area is the one of `system_identifier`, else the environment's current one (backup/wal/areas.py)."""
    if not config_path.is_absolute():
        raise UsageError(f"the configuration must be named by absolute path, not {config_path}")
    state_value, backup, wal = _settings(config_path, env)
    where = f"environments.{env}"
    root = config_path.parent
    state_dir = root / str(state_value)
    env_dir = state_dir / env

    def path_of(value: Any, default: Path) -> Path:
        if value is None:
            return default
        path = Path(str(value)).expanduser()
        return path if path.is_absolute() else root / path

    from cuisine_db.storage import resolve_url
    from cuisine_db.storage.keys import KEY_FILE, PUBLIC_FILE, recipients_from_file, retired_identity_files

    recipients = [str(r) for r in backup.get("recipients") or []]
    public = state_dir / "keys" / PUBLIC_FILE
    if not recipients and public.exists():
        recipients = recipients_from_file(public)
    identity_sources = [identity_file] if identity_file is not None else []
    if backup.get("identity_file"):
        identity_sources.append(path_of(backup["identity_file"], root))
    identity_sources.append(state_dir / "keys" / KEY_FILE)
    identity_sources += retired_identity_files(state_dir / "keys")
    credentials = credentials_file or path_of(wal.get("credentials_file"), env_dir / CREDENTIALS_FILE)
    signing_sources = [env_dir / WAL_SIGNING_KEY]
    if backup.get("signing_key_file"):
        signing_sources.append(path_of(backup["signing_key_file"], root))
    signing_sources.append(state_dir / "keys" / "signing.key")
    trusted = [str(value) for value in backup.get("trusted_signers") or []]
    trusted_files = [env_dir / WAL_SIGNING_PUBLIC] + ([] if trusted else [state_dir / "keys" / "signing.pub"])
    variables = [backup.get("s3_access_key_env"), backup.get("s3_secret_key_env")]
    secrets: dict[str, str] = {}
    if any(variables):
        stored = read_credentials(credentials)
        for variable in filter(None, variables):
            value = os.environ.get(str(variable)) or stored.get(str(variable))
            if value:
                secrets[str(variable)] = value
    level = backup.get("compress_level", 1)
    if not isinstance(level, int) or not 1 <= level <= 19:
        raise ConfigError(f"{where}.backup.compress_level must be 1 to 19")
    return WalAccess(
        env=env, config_path=config_path, state_dir=state_dir,
        url=resolve_url(backup.get("repository"), state_dir, root),
        s3_endpoint=backup.get("s3_endpoint"), s3_region=backup.get("s3_region"),
        recipients=tuple(recipients), identity_sources=tuple(dict.fromkeys(identity_sources)),
        identity_env=backup.get("identity_env"), compress_level=level,
        push_batch=_number(wal, "push_batch", PUSH_BATCH, f"{where}.wal"),
        push_threads=_number(wal, "push_threads", PUSH_THREADS, f"{where}.wal"),
        prefetch=_number(wal, "prefetch", PREFETCH, f"{where}.wal"),
        fetch_threads=threads(_number(wal, "fetch_threads", FETCH_THREADS, f"{where}.wal", low=0)),
        spool_mb=_spool_mb(wal, f"{where}.wal"),
        spool=spool or path_of(wal.get("spool_dir"), env_dir / SPOOL_FOLDER),
        credentials_file=credentials, secrets=secrets,
        s3_access_key_env=backup.get("s3_access_key_env"), s3_secret_key_env=backup.get("s3_secret_key_env"),
        signing_env=backup.get("signing_key_env"), signing_sources=tuple(dict.fromkeys(signing_sources)),
        trusted=tuple(trusted), trusted_files=tuple(trusted_files),
        object_lock_days=_lock_days(backup.get("object_lock_days"), f"{where}.backup"),
        system_area=_area(env, env_dir, system_identifier),
    )


def _lock_days(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= LOCK_DAYS_MAX:
        raise ConfigError(f"{where}.object_lock_days must be a whole number of days from 1 to {LOCK_DAYS_MAX}")
    return value


def _area(env: str, env_dir: Path, system_identifier: str | None) -> str | None:
    from cuisine_db.backup.wal import areas

    try:
        area = areas.area_for(env, env_dir, system_identifier)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{env}'s WAL archive areas record cannot be read: {exc}") from None
    except PermissionError:
        raise ConfigError(f"{env_dir / areas.RECORD} cannot be read by this user") from None
    return None if area == env else area

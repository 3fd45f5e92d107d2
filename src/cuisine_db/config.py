"""Environments and settings: built once (defaults, file, environment variables, flags) and passed down."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from cuisine_db import wal_defaults
from cuisine_db.errors import ConfigError, UsageError

CONFIG_ENV_VAR = "CUISINE_DB_CONFIG"
DEFAULT_ENV_VAR = "CUISINE_DB_ENV"
CACHE_ENV_VAR = "CUISINE_DB_CACHE"
CONFIG_FILE_NAME = "cuisine-db.toml"
SUPPORTED_MAJORS = (14, 15, 16, 17, 18)
ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
# An environment of this name is protected unless its table says `protected = false`.
PROTECTED_BY_NAME = "production"


# --- Monitoring (issue 6): thresholds for db-monitor, db-connections and metrics ---------------------
class Monitoring(BaseModel):
    """Thresholds of the monitoring checks; `[environments.NAME.monitoring]` in cuisine-db.toml overrides each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Shares of the connection slots left to ordinary roles (max_connections minus reserved slots).
    connections_warning: float = Field(default=0.80, gt=0, le=1)
    connections_critical: float = Field(default=0.95, gt=0, le=1)
    # The runbook's connection leaks: a session idle inside an open transaction for this long.
    idle_in_transaction_seconds: float = Field(default=60, gt=0)
    long_query_warning_seconds: float = Field(default=300, gt=0)
    long_query_critical_seconds: float = Field(default=1800, gt=0)
    # A transaction open this long holds back vacuum's horizon for every table, whatever its state.
    long_transaction_seconds: float = Field(default=3600, gt=0)
    # Transaction volume: judged only when the window saw at least this many transactions.
    rollback_ratio_warning: float = Field(default=0.05, gt=0, le=1)
    rollback_min_transactions: int = Field(default=100, ge=1)
    # Query performance: buffer cache hit ratio (judged past 10,000 block reads) and slow statements.
    cache_hit_warning: float = Field(default=0.95, gt=0, le=1)
    cache_hit_critical: float = Field(default=0.90, gt=0, le=1)
    slow_query_mean_ms: float = Field(default=1000, gt=0)
    # Statements run fewer times than this (a one-off load, a migration) are not outliers of the workload.
    slow_query_min_calls: int = Field(default=3, ge=1)
    # Storage: free share of the data directory's filesystem, days until full, dead tuples.
    disk_free_warning: float = Field(default=0.20, gt=0, lt=1)
    disk_free_critical: float = Field(default=0.10, gt=0, lt=1)
    days_until_full_warning: float = Field(default=30, gt=0)
    days_until_full_critical: float = Field(default=7, gt=0)
    dead_share_warning: float = Field(default=0.20, gt=0, le=1)
    dead_rows_minimum: int = Field(default=10_000, ge=0)
    # Wraparound: transaction ID / MultiXact age as a share of the 2^31 limit.
    wraparound_warning: float = Field(default=0.50, gt=0, lt=1)
    wraparound_critical: float = Field(default=0.75, gt=0, lt=1)
    prepared_transaction_seconds: float = Field(default=300, gt=0)
    replication_lag_warning_seconds: float = Field(default=60, gt=0)
    replication_lag_critical_seconds: float = Field(default=300, gt=0)
    slot_retained_warning_bytes: int = Field(default=1024**3, gt=0)
    # Growth: at most one size snapshot per interval; a remote server's disk size (local ones are measured).
    snapshot_interval_seconds: float = Field(default=3600, ge=0)
    disk_bytes: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Monitoring:
        # (lower, higher): a warning must come before its critical level.
        pairs = [("connections_warning", "connections_critical"),
                 ("long_query_warning_seconds", "long_query_critical_seconds"),
                 ("cache_hit_critical", "cache_hit_warning"),
                 ("disk_free_critical", "disk_free_warning"),
                 ("days_until_full_critical", "days_until_full_warning"),
                 ("wraparound_warning", "wraparound_critical"),
                 ("replication_lag_warning_seconds", "replication_lag_critical_seconds")]
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must not be above {high}")
        return self
# The purposes the tool connects for besides "admin" (the environment's own connection): see postgres/purposes.py.
Purpose = Literal["backup", "monitoring", "operator", "explain"]


class RoleRef(BaseModel):
    """A role the tool connects as for one purpose; its password only by reference (or the environment's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    password_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    passfile: Path | None = None
_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _variable_name(value: str | None) -> str | None:
    if value is not None and not _VARIABLE.match(value):
        raise ValueError("names an environment variable (e.g. CUISINE_S3_SECRET), never the secret itself")
    return value


# --- Backups (issue 3): repository, encryption, retention; maintenance mode ---------------------------
class Retention(BaseModel):
    """Grandfather-father-son: the newest backup of each of the last N days, ISO weeks and months."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily: int = Field(default=7, ge=0, le=1000)
    weekly: int = Field(default=4, ge=0, le=1000)
    monthly: int = Field(default=12, ge=0, le=1000)
    # A backup without a manifest this much older than its name's time was abandoned (a killed run).
    incomplete_after_hours: int = Field(default=48, ge=1)


class BackupConfig(BaseModel):
    """Where an environment's backups go and who can read them; secrets only by reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # file:///path, a path (relative to the config file), or s3://bucket/prefix. Default: <state_dir>/repository.
    repository: str | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_access_key_env: str | None = None   # variable names; without them boto3's usual chain applies
    s3_secret_key_env: str | None = None
    # age public keys (age1...); default: the key pair under <state_dir>/keys/ (cuisine-db backup keygen).
    recipients: list[str] = Field(default_factory=list)
    # The private identity, needed only where restores and verification run: a 0600 file or a variable.
    identity_file: Path | None = None
    identity_env: str | None = None
    # The Ed25519 key that signs manifests, records and WAL (storage/signing.py), needed only where backups are
    # taken: a 0600 PEM file or a variable. Default: <state_dir>/keys/signing.key (cuisine-db backup keygen).
    signing_key_file: Path | None = None
    signing_key_env: str | None = None
    # Public keys (ed25519:<base64>) whose signatures are trusted; several for rotation. Default: the one in
    # <state_dir>/keys/signing.pub. Anything in the repository not signed by one of them is never used.
    trusted_signers: list[str] = Field(default_factory=list)
    # S3 only: every object written carries Object Lock retention (COMPLIANCE) until now + this many days; the
    # bucket must have Object Lock enabled (docs/security.md). Unset: no retention from the tool.
    object_lock_days: int | None = Field(default=None, ge=1, le=36500)
    jobs: int = Field(default=2, ge=1, le=64)
    # zstd level: 1 compresses about twice as fast as 3 for about 10% more bytes (docs/benchmarks.md).
    compress_level: int = Field(default=1, ge=1, le=19)
    # maintenance_work_mem of the sessions pg_restore opens (each of `jobs` builds indexes with it), as
    # PostgreSQL's "Populating a Database" advises for restores: index builds sort in memory instead of on disk.
    restore_maintenance_work_mem: str = Field(default="256MB", pattern=r"^[1-9][0-9]{0,6}(kB|MB|GB)$")
    retention: Retention = Field(default_factory=Retention)

    @field_validator("s3_access_key_env", "s3_secret_key_env", "identity_env", "signing_key_env")
    @classmethod
    def _variables(cls, value: str | None) -> str | None:
        return _variable_name(value)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for recipient in value:
            if not re.match(r"^age1[02-9ac-hj-np-z]{58}$", recipient):
                raise ValueError(f"{recipient[:12]!r}... is not an age public key (age1...)")
        return value

    @field_validator("trusted_signers")
    @classmethod
    def _signers(cls, value: list[str]) -> list[str]:
        for signer in value:
            if not re.match(r"^ed25519:[A-Za-z0-9+/]{43}=$", signer):
                raise ValueError(f"{signer[:20]!r}... is not a signing public key (ed25519:<base64>)")
        return value

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and not value.startswith(("file://", "s3://")):
            raise ValueError("the repository is file:///path, a path, or s3://bucket/prefix")
        return value

    @model_validator(mode="after")
    def _lock_on_s3_only(self) -> BackupConfig:
        if self.object_lock_days is not None and not (self.repository or "").startswith("s3://"):
            raise ValueError("object_lock_days is S3 Object Lock: it needs an s3:// repository")
        return self


class MaintenanceConfig(BaseModel):
    """Which roles maintenance mode blocks: the listed ones, or every login role that is not exempt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    application_roles: list[str] | None = None
    exempt_roles: list[str] = Field(default_factory=list)


# --- Point-in-time recovery (issue 4): WAL archiving and the backup schedule ---------------------------
class WalConfig(BaseModel):
    """WAL archiving: how often a segment is forced out, and how `wal push`/`wal fetch` batch their work."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The runbook's "transaction logs every 15 minutes": the longest a committed transaction waits to be archived.
    archive_timeout: str = Field(default=wal_defaults.ARCHIVE_TIMEOUT, pattern=r"^\d+\s*(s|min|h)?$")
    push_batch: int = Field(default=wal_defaults.PUSH_BATCH, ge=1, le=64)      # .ready files one call pushes
    push_threads: int = Field(default=wal_defaults.PUSH_THREADS, ge=1, le=64)
    prefetch: int = Field(default=wal_defaults.PREFETCH, ge=1, le=64)  # segments the fetch-ahead spool holds (1: none)
    spool_mb: int = Field(default=wal_defaults.SPOOL_MB, ge=16, le=1 << 20)  # and MiB on disk, at most
    fetch_threads: int = Field(default=wal_defaults.FETCH_THREADS, ge=0, le=64)  # the prefetcher's; 0: one per core
    spool_dir: Path | None = None          # default <state_dir>/<env>/wal-spool (the server's user writes it)
    credentials_file: Path | None = None   # default <state_dir>/<env>/wal-credentials (S3 keys for the server)
    # backup status: exit 1 past these ages.
    max_full_backup_age_hours: float = Field(default=26, gt=0)
    max_archive_age_minutes: float = Field(default=16, gt=0)


class ScheduleConfig(BaseModel):
    """The runbook's schedule: a full backup daily (UTC), retention after it, then verification of the newest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    full_backup_at: str = Field(default="01:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    status_every_minutes: int = Field(default=15, ge=1, le=1440)
# --- Read replicas and pooling (issue 9): remote replicas, the routing bound, PgBouncer ---------------
REPLICA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class ReplicaRef(BaseModel):
    """A streaming replica of a remote environment that a person set up (local ones are made by the tool)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where the replica listens; user, database and password come from the environment (same roles).
    dsn: str
    # Its replication slot on the primary, if it uses one (db-replicas shows what it retains).
    slot: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,63}$")

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(value)
        except Exception as exc:
            raise ValueError(f"not a valid PostgreSQL connection string ({exc})") from None
        if params.get("password"):
            raise ValueError("must not contain a password; the environment's reference serves its replicas too")
        if not params.get("host"):
            raise ValueError("needs a host")
        return value


class PoolerConfig(BaseModel):
    """PgBouncer in front of an environment: where it listens and what it is sized for (cuisine-db pooler config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=6432, ge=1024, le=65535)
    # Application instances expected to connect, each with its own client-side pool of this many connections.
    applications: int = Field(default=4, ge=1, le=10_000)
    connections_per_application: int = Field(default=20, ge=1, le=10_000)
    # Server connections kept out of the pools: migrations, the tool's commands, monitoring, a person's psql.
    reserved_server_connections: int = Field(default=10, ge=0, le=10_000)
    pool_mode: Literal["transaction", "session"] = "transaction"
    # The role PgBouncer runs auth_query as; a remote server's password for it only by reference.
    auth_user: str = Field(default="cuisine_pgbouncer", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    auth_password_env: str | None = None
    # Where `pooler config` writes pgbouncer.ini and its auth file (default: <state_dir>/<env>/pgbouncer).
    config_dir: Path | None = None

    @field_validator("auth_password_env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        return _variable_name(value)


# --- Patroni (issue 19): an environment whose primary is whichever member Patroni made the leader ---------
_HTTP_ENDPOINT = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


class PatroniConfig(BaseModel):
    """Where Patroni's view of an environment is read: the members' REST API, or the etcd cluster and scope
    Patroni keeps its state in (the REST endpoints are then read from etcd); or, for an environment without a
    dsn, `members` embedded Patroni servers and one etcd that `make cluster-up` runs under .cuisine/<env>/."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members: int | None = Field(default=None, ge=1, le=9)
    rest: list[str] = Field(default_factory=list)
    etcd: list[str] = Field(default_factory=list)
    scope: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    namespace: str = Field(default="/service/", pattern=r"^/([A-Za-z0-9_.-]+/)*$")
    # Each REST or etcd request gives up after this long; every endpoint is tried before a command gives up.
    timeout_seconds: float = Field(default=3, gt=0, le=60)
    # Patroni's REST API basic authentication (restapi.authentication), the password by reference only.
    rest_username: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    rest_password_env: str | None = None

    @field_validator("rest", "etcd")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for url in value:
            if not _HTTP_ENDPOINT.match(url):
                raise ValueError(f"{url!r}: give http://host:port or https://host:port (no path, no credentials)")
            port = int(url.rsplit(":", 1)[1])
            if not 1 <= port <= 65535:
                raise ValueError(f"{url!r}: port {port} is out of range")
        if len(set(value)) != len(value):
            raise ValueError("an endpoint is listed twice")
        return value

    @field_validator("rest_password_env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        return _variable_name(value)

    @property
    def embedded(self) -> bool:
        return self.members is not None

    @model_validator(mode="after")
    def _shape(self) -> PatroniConfig:
        if self.members is not None:
            if self.rest or self.etcd or self.scope:
                raise ValueError("members = N runs Patroni here (make cluster-up); rest, etcd and scope are for "
                                 "a Patroni cluster elsewhere — give one or the other")
            return self
        if not self.rest and not self.etcd:
            raise ValueError("name the REST endpoints (rest = [\"http://db1:8008\", ...]) or the etcd endpoints "
                             "and scope (etcd = [...], scope = \"...\"), or members = N for an embedded cluster")
        if self.etcd and not self.scope:
            raise ValueError("etcd endpoints need the scope Patroni's members share (scope = \"...\")")
        return self


# ----------------------------------------------------------------------------------------------------


class Environment(BaseModel):
    """One database the runbook's commands can target: a local cluster or a remote server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    # true or false only ("off" or 0 are refused, not read as a wish); production is protected unless it says false.
    protected: StrictBool = False
    database: str = "cuisine"
    # A local cluster managed under .cuisine/<name>/ (used when dsn is absent).
    port: int | None = Field(default=None, ge=1024, le=65535)
    postgres_version: int = 14
    pg_bin: Path | None = None
    # The OS user its servers run as when the tool runs as root (default: cuisine-<name>, or the owner of a data
    # directory made before environments had users of their own); replicas and pgbouncer run as it too.
    os_user: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    server_settings: dict[str, str | int | bool] = Field(default_factory=dict)
    # A remote server: the password only by reference, never inline.
    dsn: str | None = None
    password_env: str | None = None
    passfile: Path | None = None
    # How long a migration statement may wait for a lock before it is retried.
    lock_timeout: str = "5s"
    lock_retries: int = Field(default=5, ge=0, le=100)
    # Monitoring (issue 6): thresholds of db-monitor, db-connections and the metrics.
    monitoring: Monitoring = Field(default_factory=Monitoring)
    # --- Security (issue 7): the roles the tool connects as per purpose (backup, monitoring, operator),
    # credentials by reference only; where remote servers' logs are copied for db-audit-report; roles
    # db-security-check expects to hold superuser, CREATEROLE, BYPASSRLS or REPLICATION.
    roles: dict[Purpose, RoleRef] = Field(default_factory=dict)
    audit_log_dir: Path | None = None
    expected_privileged_roles: list[str] = Field(default_factory=list)
    # Performance tuning (issue 5): how long index statistics must cover before an index counts as unused, when a
    # table counts as large, and how long db-explain lets a query run.
    unused_index_min_days: float = Field(default=7, ge=0)
    large_table_rows: int = Field(default=10_000, ge=0)
    explain_timeout_seconds: float = Field(default=30, gt=0, le=86_400)
    # Backups and maintenance mode (issue 3).
    backup: BackupConfig = Field(default_factory=BackupConfig)
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)
    # Point-in-time recovery (issue 4): WAL archiving and the backup schedule.
    wal: WalConfig = Field(default_factory=WalConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    # --- Read replicas and pooling (issue 9): a remote environment's replicas (local ones live in
    # <state_dir>/<env>/replicas.json, made by db-create-replica); the replay lag under which reporting
    # commands read from a replica (replica=NAME|any), else they fall back to the primary with a warning;
    # PgBouncer in front of the environment.
    replicas: dict[str, ReplicaRef] = Field(default_factory=dict)
    replica_max_lag_seconds: float = Field(default=30, gt=0, le=86_400)
    replica_max_lag_bytes: int = Field(default=64 * 1024**2, gt=0)
    pooler: PoolerConfig | None = None
    # The web dashboard (issue 21): off loopback it needs this token, read from the variable named here.
    dashboard_token_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    # Patroni (issue 19): the primary is the leader Patroni names, read on every call (postgres/patroni.py).
    patroni: PatroniConfig | None = None

    def secret_variables(self) -> list[str]:
        """Names of the environment variables this environment reads secrets from."""
        names = [self.password_env, self.backup.s3_access_key_env, self.backup.s3_secret_key_env,
                 self.backup.identity_env, self.backup.signing_key_env,
                 *(ref.password_env for ref in self.roles.values()),
                 self.pooler.auth_password_env if self.pooler else None, self.dashboard_token_env,
                 self.patroni.rest_password_env if self.patroni else None]
        return [name for name in names if name]

    @property
    def is_local(self) -> bool:
        """A single local cluster the tool runs itself (not a remote server, not a Patroni cluster)."""
        return self.dsn is None and self.patroni is None

    @property
    def embedded_patroni(self) -> bool:
        """Patroni members and etcd run by the tool on this machine (make cluster-up), under .cuisine/<env>/."""
        return self.patroni is not None and self.patroni.embedded

    @model_validator(mode="before")
    @classmethod
    def _production_is_protected(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("name") == PROTECTED_BY_NAME and "protected" not in values:
            return {**values, "protected": True}
        return values

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            raise ValueError("environment names are lowercase letters, digits, '-' and '_'")
        return value

    @field_validator("postgres_version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value not in SUPPORTED_MAJORS:
            raise ValueError(f"postgres_version must be one of {', '.join(map(str, SUPPORTED_MAJORS))}")
        return value

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(value)
        except Exception as exc:
            raise ValueError(f"not a valid PostgreSQL connection string ({exc})") from None
        if params.get("password"):
            raise ValueError("must not contain a password; use password_env or passfile")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Environment:
        if self.patroni is not None:
            return self._patroni_shape(self.patroni)
        if self.dsn is None and self.port is None:
            raise ValueError("a local environment needs a port (or give a dsn for a remote server)")
        if self.dsn is not None and (self.port is not None or self.pg_bin is not None or self.os_user is not None):
            raise ValueError("port, pg_bin and os_user are for local clusters; a remote environment has only dsn")
        if self.password_env is not None and not re.match(r"^[A-Z_][A-Z0-9_]*$", self.password_env):
            raise ValueError("password_env names an environment variable (e.g. CUISINE_PROD_PASSWORD)")
        if self.dsn is None and self.replicas:
            raise ValueError("replicas are listed for remote environments; a local one's are made with "
                             "make db-create-replica")
        for name in self.replicas:
            if not REPLICA_NAME.match(name) or name in ("any", "primary"):
                raise ValueError(f"replica name {name!r}: lowercase letters, digits and '_', not 'any' or 'primary'")
        return self

    def _patroni_shape(self, patroni: PatroniConfig) -> Environment:
        if self.replicas:
            raise ValueError("a Patroni environment's replicas are Patroni's members; leave out [replicas]")
        if patroni.embedded:
            if self.dsn is not None:
                raise ValueError("patroni.members runs an embedded cluster here; a dsn points at servers elsewhere "
                                 "(then give patroni.rest or patroni.etcd)")
            if self.port is not None:
                raise ValueError("an embedded Patroni cluster picks free ports for its members; leave out port")
            return self
        if self.dsn is None:
            raise ValueError("a Patroni cluster elsewhere needs a dsn for the user, database and TLS settings (its "
                             "host and port are the leader's, read from Patroni)")
        if self.port is not None or self.pg_bin is not None or self.os_user is not None:
            raise ValueError("port, pg_bin and os_user are for clusters run here; a remote environment has only dsn")
        if self.password_env is not None and not re.match(r"^[A-Z_][A-Z0-9_]*$", self.password_env):
            raise ValueError("password_env names an environment variable (e.g. CUISINE_PROD_PASSWORD)")
        return self


class _IncidentsFile(BaseModel):
    """`[incidents]`: the webhook notified when an incident opens or is resolved (a URL, or a variable naming one,
    since chat webhooks carry their token in the URL)."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = None
    webhook_url_env: str | None = None

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not _is_http_url(value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("webhook_url_env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Z_][A-Z0-9_]*$", value):
            raise ValueError("names an environment variable (e.g. CUISINE_INCIDENT_WEBHOOK)")
        return value


def _is_http_url(value: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_env: str | None = None
    migrations_dir: str = "db/migrations"
    schema_file: str = "db/schema.sql"
    state_dir: str = ".cuisine"
    server_user: str | None = None
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Disaster recovery (incidents): where to announce an incident's opening and resolution.
    incidents: _IncidentsFile = Field(default_factory=lambda: _IncidentsFile())


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a command needs to know about where it runs."""

    config_path: Path
    root: Path
    state_dir: Path
    cache_dir: Path
    migrations_dir: Path
    schema_file: Path
    default_env: str
    server_user: str | None
    environments: Mapping[str, Environment]
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    # Disaster recovery (incidents): the webhook URL may hold a token, so it is never shown.
    incident_webhook: str | None = field(default=None, repr=False)
    incident_webhook_env: str | None = None

    def env(self, name: str | None = None) -> Environment:
        """The named environment, or the default one; an unknown or empty name is a usage error."""
        if name is not None and not name.strip():
            known = ", ".join(sorted(self.environments))
            raise UsageError("env= (--env) is empty: name an environment, or leave it out for the default "
                             f"({self.default_env})", hint=f"known environments: {known}")
        chosen = name or self.default_env
        try:
            return self.environments[chosen]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise UsageError(f"unknown environment {chosen!r}", hint=f"known environments: {known}") from None

    def env_dir(self, env: Environment) -> Path:
        """Where the tool keeps an environment's cluster, credentials and journal."""
        return self.state_dir / env.name

    def secret(self, variable: str | None) -> str | None:
        """The value of a secret an environment refers to by variable name, if it is set."""
        return self.secrets.get(variable) if variable else None

    def password_for(self, env: Environment) -> str | None:
        """The password an environment refers to by variable name, if it does."""
        if env.password_env is None:
            return None
        return self.secrets.get(env.password_env)


# db-upgrade records the major a local environment's cluster runs after an upgrade here (under .cuisine/<env>/)
# rather than editing the operator's cuisine-db.toml; it wins over postgres_version (cuisine_db/upgrade/state.py).
MAJOR_FILE = "postgres_major"


def recorded_major(env_dir: Path) -> int | None:
    """The major version db-upgrade recorded for a local environment, if any."""
    try:
        text = (env_dir / MAJOR_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) in SUPPORTED_MAJORS else None


def _find_config(environ: Mapping[str, str]) -> Path:
    explicit = environ.get(CONFIG_ENV_VAR)
    if explicit:
        return Path(explicit)
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILE_NAME} found in {here} or its parents",
        hint=f"run from the project folder or set {CONFIG_ENV_VAR}",
    )


def _default_cache(environ: Mapping[str, str]) -> Path:
    if environ.get(CACHE_ENV_VAR):
        return Path(environ[CACHE_ENV_VAR])
    # As root the servers run as another OS user, who must be able to read the binaries.
    if os.geteuid() == 0:
        return Path("/var/cache/cuisine-db")
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cuisine-db"


def _describe(error: ValidationError, path: Path, prefix: tuple[str, ...] = ()) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in (*prefix, *first["loc"])) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{path}: {where}: {message}"


# Secrets this process took out of its own environment: a second load in the same process still finds them.
_TAKEN: dict[str, str] = {}


def _take_secrets(environ: Mapping[str, str], names: list[str]) -> dict[str, str]:
    """The values of the secret variables the environments name. Read from this process's own environment, they
    leave it: no child (pg_ctl, the server, pg_dump) inherits them; each gets only what it needs, explicitly."""
    if environ is not os.environ:
        return {name: environ[name] for name in names if name in environ}
    for name in names:
        if name in os.environ:
            _TAKEN[name] = os.environ.pop(name)
    return {name: _TAKEN[name] for name in names if name in _TAKEN}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration file the environment points at."""
    environ = os.environ if environ is None else environ
    path = _find_config(environ)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        named = f" (${CONFIG_ENV_VAR})" if environ.get(CONFIG_ENV_VAR) else ""
        raise ConfigError(f"configuration file {path}{named} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    environments: dict[str, Environment] = {}
    for name, values in parsed.environments.items():
        try:
            environments[name] = Environment.model_validate({**values, "name": name})
        except ValidationError as exc:
            raise ConfigError(_describe(exc, path, ("environments", name))) from None
    if not environments:
        raise ConfigError(f"{path}: environments: at least one environment is required")
    root = path.resolve().parent
    fallback = "development" if "development" in environments else next(iter(environments))
    known = ", ".join(sorted(environments))
    if parsed.default_env is not None and parsed.default_env not in environments:
        raise ConfigError(f"{path}: default_env: {parsed.default_env!r} is not a defined environment",
                          hint=f"known environments: {known}")
    chosen = environ.get(DEFAULT_ENV_VAR)
    if chosen and chosen not in environments:
        raise ConfigError(f"${DEFAULT_ENV_VAR} is {chosen!r}, which is not an environment of {path}",
                          hint=f"known environments: {known}; unset {DEFAULT_ENV_VAR} for the file's default_env")
    default_env = chosen or parsed.default_env or fallback
    ports = [env.port for env in environments.values() if env.port is not None]
    state_dir = root / parsed.state_dir
    for name, env in environments.items():
        upgraded = recorded_major(state_dir / name) if env.is_local else None
        if upgraded is not None and upgraded != env.postgres_version:
            environments[name] = env.model_copy(update={"postgres_version": upgraded})
    if len(ports) != len(set(ports)):
        raise ConfigError(f"{path}: environments: two local environments share a port")
    secrets = _take_secrets(environ, [name for env in environments.values() for name in env.secret_variables()])
    webhook = parsed.incidents.webhook_url
    webhook_env = parsed.incidents.webhook_url_env
    if webhook_env and environ.get(webhook_env):
        webhook = environ[webhook_env]
        if not _is_http_url(webhook):
            raise ConfigError(f"${webhook_env} (incidents.webhook_url_env) does not hold an http:// or https:// URL")
    return Settings(
        config_path=path.resolve(),
        root=root,
        state_dir=state_dir,
        cache_dir=_default_cache(environ),
        migrations_dir=root / parsed.migrations_dir,
        schema_file=root / parsed.schema_file,
        default_env=default_env,
        server_user=parsed.server_user,
        environments=environments,
        secrets=secrets,
        incident_webhook=webhook,
        incident_webhook_env=webhook_env,
    )

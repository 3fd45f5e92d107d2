"""Which role a command connects as: the least privilege its purpose needs.

`admin` is the environment's own connection (the dsn's user, or a local cluster's superuser): migrations,
user management, grants, configuration. The other purposes have roles of their own, created by
`cuisine-db security setup-roles`:

- `monitoring` (pg_monitor): sizes, migration status, permissions, security checks, audit reports;
- `backup` (REPLICATION, pg_read_all_data): pg_dump and pg_basebackup;
- `operator` (pg_signal_backend, pg_monitor): cancelling and terminating queries;
- `explain` (no predefined role; SELECT, INSERT, UPDATE, DELETE on the application's tables, used only inside
  db-explain's rolled-back transaction): db-explain, which runs a statement a person typed.

An environment names them in cuisine-db.toml (`[environments.E.roles] monitoring = { user = "...",
password_env = "..." }`). A local cluster needs no configuration: once setup-roles has written a role's
generated password to the cluster's 0600 pgpass, commands of that purpose connect as it. Where no role is
configured or set up, a purpose falls back to `admin`, so commands keep working before setup-roles runs —
except `explain` (`STRICT`): a statement typed at db-explain never runs as admin (see diagnose/explain.py).
"""

from __future__ import annotations

from cuisine_db.config import Environment, RoleRef, Settings
from cuisine_db.postgres import pgpass

ADMIN = "admin"
MONITORING = "monitoring"
PURPOSES = ("backup", "monitoring", "operator", "explain")
# The replicas' streaming role (replicas/role.py creates it); named here with the others the tool logs in as.
REPLICATION_ROLE = "cuisine_replication"
LOCAL_ROLES = {"backup": "cuisine_backup", "monitoring": "cuisine_monitor", "operator": "cuisine_operator",
               "explain": "cuisine_explain"}
# Purposes that never fall back to admin: their connections run what a person typed.
STRICT = ("explain",)


def check(purpose: str) -> str:
    if purpose != ADMIN and purpose not in PURPOSES:
        raise ValueError(f"unknown connection purpose {purpose!r}")
    return purpose


def configured(env: Environment, purpose: str) -> RoleRef | None:
    """The role cuisine-db.toml names for a purpose on an environment, if it names one."""
    return next((ref for key, ref in env.roles.items() if key == purpose), None)


def role_name(env: Environment, purpose: str) -> str:
    """The role that serves a purpose on an environment, configured or the local default."""
    ref = configured(env, check(purpose))
    return ref.user if ref is not None else LOCAL_ROLES[purpose]


def role_for(settings: Settings, env: Environment, purpose: str) -> RoleRef | None:
    """The role to connect as for this purpose, or None for the environment's own (admin) connection."""
    if check(purpose) == ADMIN:
        return None
    ref = configured(env, purpose)
    if ref is not None:
        return ref
    if env.is_local and any(e.user == LOCAL_ROLES[purpose] for e in pgpass.read(settings.env_dir(env) / "pgpass")):
        return RoleRef(user=LOCAL_ROLES[purpose])
    return None


def is_set_up(settings: Settings, env: Environment, purpose: str) -> bool:
    """Whether the purpose has a role of its own to connect as (configured, or set up on a local cluster)."""
    return role_for(settings, env, purpose) is not None


def password_for(settings: Settings, env: Environment, purpose: str) -> str | None:
    """The password a purpose's connection takes from an environment variable, if any (else from a passfile)."""
    role = role_for(settings, env, purpose)
    if role is None:
        return settings.password_for(env)
    return settings.secrets.get(role.password_env) if role.password_env else None

"""What an operator may ask of db-upgrade: a target major, a method, an environment; the rest is refused (exit 2)."""

from __future__ import annotations

from dataclasses import dataclass

from cuisine_db.config import SUPPORTED_MAJORS, Environment
from cuisine_db.errors import UsageError

# pg_upgrade's transfer modes, in-place on a local cluster. --swap arrived in PostgreSQL 18.
METHODS = ("clone", "copy", "link", "swap")
DEFAULT_METHOD = "link"
SWAP_SINCE = 18


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """A checked request: env's cluster from `source` to `target` with `method`."""

    env: str
    source: int
    target: int
    method: str


def _manual_steps(env: Environment, to: int | None) -> str:
    """What to run on a remote server for an in-place upgrade (docs/upgrade.md, 'Remote servers')."""
    new = to or "NEW"
    only_missing = " --missing-stats-only" if to is None or to >= 18 else ""
    return (f"on the server, as its OS user: 1) install PostgreSQL {new}; 2) initdb -D NEW_DATA with the old "
            "cluster's encoding, locale and --data-checksums; 3) pg_upgrade --check -b OLD_BIN -B NEW_BIN -d OLD_DATA "
            f"-D NEW_DATA --link; 4) stop the old server; 5) the same without --check; 6) start PostgreSQL {new}; "
            f"7) vacuumdb --all --analyze-in-stages{only_missing}; 8) a full backup into a new repository. Or "
            f"from here: make db-upgrade env={env.name} to={new} method=logical to_dsn='host=... dbname=... user=...' "
            "onto an empty server of the new major")


def validate(env: Environment, to: int | None, method: str | None) -> UpgradeRequest:
    """The request, or a UsageError naming what is wrong; nothing has been touched yet."""
    chosen = DEFAULT_METHOD if method is None else method
    if chosen not in METHODS:
        shown = chosen if chosen.strip() else "(empty)"
        raise UsageError(f"method={shown} is not an upgrade method; choose one of {', '.join(METHODS)}, logical")
    if not env.is_local:
        raise UsageError(
            f"{env.name} is a remote server: method={chosen} runs pg_upgrade on the server's own disk, which this "
            "tool cannot reach",
            hint=_manual_steps(env, to))
    if env.pg_bin is not None:
        raise UsageError(f"{env.name} runs the build in pg_bin ({env.pg_bin}); db-upgrade picks builds itself",
                         hint="remove pg_bin from the environment to upgrade it with the cached builds")
    source = env.postgres_version
    to = target_given(env, to, source)
    if to == source:
        raise UsageError(f"to={to}: {env.name} already runs PostgreSQL {source}; nothing to upgrade")
    if to < source:
        raise UsageError(f"to={to} is older than {env.name}'s PostgreSQL {source}: pg_upgrade only goes forward",
                         hint="to go back, restore a backup taken before the upgrade into a cluster of that major")
    check_supported(to, source)
    if chosen == "swap" and to < SWAP_SINCE:
        raise UsageError(f"method=swap needs pg_upgrade {SWAP_SINCE} or newer; to={to} has no --swap",
                         hint="choose method=link (seconds, no way back once the new server starts) or copy")
    return UpgradeRequest(env=env.name, source=source, target=to, method=chosen)


def target_given(env: Environment, to: int | None, source: int | None) -> int:
    """The target major every upgrade method needs, or the UsageError saying it is missing (with the source major
    where it is known without connecting)."""
    if to is None:
        raise UsageError("to= (--to) is missing: name the major version to upgrade to",
                         hint=None if source is None else f"{env.name} runs PostgreSQL {source}; e.g. to=18")
    return to


def check_supported(to: int, source: int | None) -> None:
    """A UsageError unless the tool can run major `to`; the choices offered are those above `source` if known."""
    if to not in SUPPORTED_MAJORS:
        raise UsageError(f"to={to} is not a major version the tool can run; choose one of "
                         f"{', '.join(str(major) for major in SUPPORTED_MAJORS if source is None or major > source)}")

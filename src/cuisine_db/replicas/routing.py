"""Read routing: where a read-only command connects when it is asked to read from a replica (`replica=NAME|any`).

`choose()` measures the candidates' replay lag (replicas/lag.py) and returns a `Route` whose `target` goes to
`connect(..., target=...)` / `client_environ(..., target=...)`. A replica is taken only when its replay is
within the environment's bounds (`replica_max_lag_seconds`, `replica_max_lag_bytes`); `any` takes the least
lagging of those. When none qualifies the route is the primary, with a warning that says why: a report is
better late from the primary than wrong from a replica that is minutes behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.postgres.target import Target

ANY = "any"
PRIMARY = "primary"


@dataclass(frozen=True, slots=True)
class Route:
    """Where reads go: `target` None means the primary; `warning` says why a replica was passed over."""

    target: Target | None
    reason: str
    warning: str | None = None
    replay_bytes: int | None = None
    delay_seconds: float | None = None


def choose(settings: Settings, env: Environment, wanted: str | None, *, command: str = "routing") -> Route:
    """The replica to read from (`wanted`: a name, `any`, or None/`primary` for the primary)."""
    if wanted is None or wanted == PRIMARY:
        return Route(None, "the primary")
    from cuisine_db.replicas import lag
    from cuisine_db.replicas.members import find, members

    if wanted == ANY:
        # A Patroni environment: only the members Patroni says stream from the leader, read now.
        candidates = members(settings, env, streaming_only=env.patroni is not None)
        if not candidates and env.patroni is not None:
            return Route(None, "the primary", f"no member of {env.name!r} streams from the leader now (Patroni's "
                                              "view): reading from the primary instead")
        if not candidates:
            raise UsageError(f"environment {env.name!r} has no replicas to read from",
                             hint=f"make db-create-replica env={env.name} name=reports1, or leave out replica=")
    else:
        candidates = [find(settings, env, wanted)]
    report = lag.measure(settings, env, candidates, command=command)
    judged = [(status, lag.unfit(status, env)) for status in report.replicas]
    fit = [status for status, reason in judged if reason is None]
    if fit:
        best = min(fit, key=lambda s: (s.replay_bytes or 0, s.delay_seconds or 0.0, s.name))
        target = next(member.target for member in candidates if member.name == best.name)
        return Route(target, f"replica {best.name} ({best.where}, {best.replay_bytes:,} bytes and "
                             f"{best.delay_seconds:.1f} s behind)", None, best.replay_bytes, best.delay_seconds)
    reasons = "; ".join(f"{status.name}: {reason}" for status, reason in judged)
    return Route(None, "the primary",
                 f"no replica of {env.name!r} is fit to read from ({reasons}): reading from the primary instead")


def routed(settings: Settings, env: Environment, wanted: str | None, *, command: str,
           notify: Callable[[str], None], warn: Callable[[str], None]) -> Target | None:
    """Where a read-only command reads (None: the primary), said: the replica chosen through `notify`, or through
    `warn` why the replicas were passed over."""
    if wanted is None:
        return None
    route = choose(settings, env, wanted, command=command)
    if route.warning:
        warn(route.warning)
    else:
        notify(f"{env.name}: reading from {route.reason}")
    return route.target


def backup_source(replica: str | None, origin: str | None) -> str | None:
    """The replica a backup reads from: --replica NAME|any, or --from replica (any); --from primary: none."""
    if origin not in (None, "primary", "replica"):
        raise UsageError(f"from={origin}: back up from the primary or a replica", hint="from=primary or from=replica")
    if origin == "primary" and replica is not None:
        raise UsageError("from=primary and replica= contradict each other")
    return replica or ("any" if origin == "replica" else None)

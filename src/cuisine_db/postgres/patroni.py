"""Patroni's view of an environment, read from its REST API on every call: members, leader, lag, timelines.

The REST endpoints come from `[environments.E.patroni]`: listed (`rest`), read from the etcd keys Patroni keeps
under `<namespace><scope>/members/` (`etcd` + `scope`), or those of the embedded cluster `make cluster-up` runs
(postgres/patroni_embedded.py). Each endpoint is tried in turn until one answers; what one member says about the
whole cluster (`/cluster`) is what every member says, since it comes from the same etcd keys. Nothing here is
cached: a leader that changed a second ago is followed by the next call.
"""

from __future__ import annotations

import base64
import functools
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cuisine_db.config import Environment, PatroniConfig, Settings
from cuisine_db.errors import FailedError, ServerDownError, UnavailableError, UsageError

LEADER_ROLES = ("leader", "master", "primary", "standby_leader")
# The state in which a replica receives WAL from the leader (Patroni 3+; "running" is one that does not yet).
STREAMING_STATES = ("streaming",)


@dataclass(frozen=True, slots=True)
class Member:
    """One member as Patroni's /cluster describes it."""

    name: str
    role: str
    state: str
    host: str
    port: int
    api_url: str
    timeline: int | None
    lag_bytes: int | None  # None for the leader, or when Patroni says "unknown"
    tags: dict[str, Any] = field(default_factory=dict)
    pending_restart: bool = False

    @property
    def is_leader(self) -> bool:
        return self.role in LEADER_ROLES

    @property
    def streaming(self) -> bool:
        return not self.is_leader and self.state in STREAMING_STATES


@dataclass(frozen=True, slots=True)
class ClusterView:
    """GET /cluster: every member, whether Patroni is paused, and which endpoint answered."""

    scope: str | None
    members: tuple[Member, ...]
    paused: bool
    endpoint: str

    @property
    def leader(self) -> Member | None:
        return next((member for member in self.members if member.is_leader), None)

    def member(self, name: str) -> Member | None:
        return next((member for member in self.members if member.name == name), None)


@dataclass(frozen=True, slots=True)
class TimelineSwitch:
    """One line of GET /history: the timeline that ended, at which WAL position, why, when, and who led next."""

    timeline: int
    lsn: int
    reason: str
    at: str | None
    new_leader: str | None


def _auth_header(settings: Settings, config: PatroniConfig) -> dict[str, str]:
    if config.rest_username is None:
        return {}
    password = settings.secret(config.rest_password_env) or ""
    token = base64.b64encode(f"{config.rest_username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def _request(url: str, *, timeout: float, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, method: str | None = None) -> tuple[int, str]:
    """One HTTP call; (status, text) for any answer, OSError-derived failures raised for none."""
    data = json.dumps(body).encode() if body is not None else None
    # http(s) URLs only: validated in config.py, or api_url values that start with http:// or https://.
    request = urllib.request.Request(url, data=data, method=method or ("POST" if body is not None else "GET"),  # noqa: S310
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read(1 << 20).decode("utf-8", "replace")
    except urllib.error.HTTPError as answer:
        return int(answer.code), answer.read(1 << 20).decode("utf-8", "replace")


def config_of(env: Environment) -> PatroniConfig:
    if env.patroni is None:
        raise UsageError(f"environment {env.name!r} is not a Patroni environment",
                         hint=f"add [environments.{env.name}.patroni] to cuisine-db.toml")
    return env.patroni


def endpoints(settings: Settings, env: Environment) -> list[str]:
    """The REST API base URLs to ask, in order."""
    config = config_of(env)
    if config.embedded:
        from cuisine_db.postgres import patroni_layout

        layout = patroni_layout.load_layout(settings, env)
        if layout is None:
            raise UnavailableError(f"{env.name}'s Patroni cluster has not been created",
                                   hint=f"make cluster-up env={env.name} creates and starts it")
        return layout.rest_urls
    if config.rest:
        return list(config.rest)
    return _from_etcd(env, config)


def _from_etcd(env: Environment, config: PatroniConfig) -> list[str]:
    """The members' api_url values under <namespace><scope>/members/, read through etcd's v3 JSON gateway."""
    prefix = f"{config.namespace}{config.scope}/members/".encode()
    range_end = prefix[:-1] + bytes([prefix[-1] + 1])
    body = {"key": base64.b64encode(prefix).decode(), "range_end": base64.b64encode(range_end).decode()}
    failures: list[str] = []
    ask = functools.partial(_request, timeout=config.timeout_seconds, body=body)
    for _base, text in _answering(config.etcd, "/v3/kv/range", ask, failures):
        urls = []
        for kv in json.loads(text).get("kvs", []):
            try:
                value = json.loads(base64.b64decode(kv.get("value", "")))
            except ValueError:
                continue
            api = str(value.get("api_url", ""))
            if api.startswith(("http://", "https://")):
                urls.append(api.removesuffix("/patroni").rstrip("/"))
        if not urls:
            raise UnavailableError(f"etcd has no Patroni members under scope {config.scope!r} of {env.name!r} "
                                   f"({config.namespace}{config.scope}/members/)",
                                   hint="check patroni.scope and patroni.namespace against the members' patroni.yml")
        return sorted(urls)
    raise UnavailableError(f"no etcd endpoint of {env.name!r} answered: {'; '.join(failures)}",
                           hint="check patroni.etcd in cuisine-db.toml and the network")


def _answering(bases: Iterable[str], path: str, ask: Callable[[str], tuple[int, str]], failures: list[str]
               ) -> Iterator[tuple[str, str]]:
    """Each endpoint's answer to `path` that came back 200, in order; why each other one did not, in `failures`."""
    for base in bases:
        try:
            status, text = ask(f"{base}{path}")
        except (OSError, ValueError) as exc:
            failures.append(f"{base}: {_reason(exc)}")
            continue
        if status != 200:
            failures.append(f"{base}: HTTP {status}")
            continue
        yield base, text


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason).strip() or type(exc).__name__


def _get(settings: Settings, env: Environment, path: str) -> tuple[str, Any]:
    """GET `path` from the first endpoint that answers 200 with JSON: (endpoint, document)."""
    config = config_of(env)
    headers = _auth_header(settings, config)
    failures: list[str] = []
    ask = functools.partial(_request, timeout=config.timeout_seconds, headers=headers)
    for base, text in _answering(endpoints(settings, env), path, ask, failures):
        try:
            return base, json.loads(text)
        except ValueError:
            failures.append(f"{base}: not JSON (is this Patroni's REST API?)")
    raise UnavailableError(f"no Patroni REST endpoint of {env.name!r} answered {path}: {'; '.join(failures)}",
                           hint=f"make cluster-up env={env.name} starts an embedded cluster" if config.embedded
                           else "check patroni.rest (or patroni.etcd) in cuisine-db.toml and the network")


def _lag(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def cluster(settings: Settings, env: Environment) -> ClusterView:
    """GET /cluster now."""
    endpoint, document = _get(settings, env, "/cluster")
    members = []
    for raw in document.get("members", []) if isinstance(document, dict) else []:
        timeline = raw.get("timeline")
        members.append(Member(
            name=str(raw.get("name", "?")), role=str(raw.get("role", "?")), state=str(raw.get("state", "?")),
            host=str(raw.get("host", "")), port=int(raw.get("port") or 5432), api_url=str(raw.get("api_url", "")),
            timeline=int(timeline) if isinstance(timeline, int) else None, lag_bytes=_lag(raw.get("lag")),
            tags=dict(raw.get("tags") or {}), pending_restart=bool(raw.get("pending_restart", False)),
        ))
    return ClusterView(scope=document.get("scope"), members=tuple(sorted(members, key=lambda m: m.name)),
                       paused=bool(document.get("pause", False)), endpoint=endpoint)


def history(settings: Settings, env: Environment) -> list[TimelineSwitch]:
    """GET /history: every timeline switch Patroni recorded, oldest first."""
    _, document = _get(settings, env, "/history")
    switches = []
    for row in document if isinstance(document, list) else []:
        if not isinstance(row, list) or len(row) < 3:
            continue
        switches.append(TimelineSwitch(timeline=int(row[0]), lsn=int(row[1]), reason=str(row[2]),
                                       at=str(row[3]) if len(row) > 3 and row[3] else None,
                                       new_leader=str(row[4]) if len(row) > 4 and row[4] else None))
    return switches


def leader(settings: Settings, env: Environment) -> Member:
    """The member Patroni made the leader; none is an outage (exit 3)."""
    view = cluster(settings, env)
    found = view.leader
    if found is None:
        states = ", ".join(f"{m.name} {m.role}/{m.state}" for m in view.members) or "no members registered"
        raise ServerDownError(f"Patroni cluster {view.scope or env.name!r} has no leader ({states})",
                               hint=f"make db-replicas env={env.name} shows the members; a failover "
                                    f"(make db-promote-replica env={env.name} name=MEMBER) names a new one")
    return found


def lsn_number(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def post(settings: Settings, env: Environment, path: str, body: dict[str, Any], *, api_url: str | None = None,
         timeout: float = 60, method: str = "POST") -> str:
    """POST to the REST API (one member's `api_url`, else the first endpoint that answers): Patroni's answer text
    on success; its refusal as a FailedError (exit 1); no answer as UnavailableError (exit 3)."""
    config = config_of(env)
    headers = _auth_header(settings, config)
    failures = []
    for base in [api_url] if api_url else endpoints(settings, env):
        try:
            status, text = _request(f"{base.rstrip('/')}{path}", timeout=timeout, body=body, headers=headers,
                                    method=method)
        except (OSError, ValueError) as exc:
            failures.append(f"{base}: {_reason(exc)}")
            continue
        if status in (200, 202):
            return text.strip()
        if status == 401:
            raise UnavailableError(f"Patroni refused {path} for {env.name!r}: authentication required or wrong",
                                   hint="set patroni.rest_username and patroni.rest_password_env")
        raise FailedError(f"Patroni refused {path} for {env.name!r} (HTTP {status}): {text.strip()[:300]}")
    raise UnavailableError(f"no Patroni REST endpoint of {env.name!r} answered {path}: {'; '.join(failures)}")


def set_parameters(settings: Settings, env: Environment, parameters: dict[str, Any]) -> None:
    """Change PostgreSQL settings on every member through Patroni's dynamic configuration (PATCH /config): Patroni
    applies them everywhere (a reload, or a pending restart for postmaster settings); ALTER SYSTEM on the leader
    alone would leave the members disagreeing."""
    post(settings, env, "/config", {"postgresql": {"parameters": parameters}}, method="PATCH")


def restart_pending(settings: Settings, env: Environment, *, wait_seconds: float = 120) -> list[str]:
    """Restart the members whose settings wait for a restart (replicas first, the leader last); their names."""
    from cuisine_db.waiting import wait_for

    latest: list[ClusterView] = []

    def noticed() -> ClusterView | None:
        latest[:] = [cluster(settings, env)]
        return latest[0] if all(m.pending_restart for m in latest[0].members) else None

    # Each member notices its pending restart in its own next loop after the configuration changed; after 15 s
    # the members that have noticed are restarted.
    view = wait_for(noticed, seconds=15, interval=0.5) or latest[0]
    restarted = []
    for member in sorted((m for m in view.members if m.pending_restart), key=lambda m: m.is_leader):
        post(settings, env, "/restart", {"restart_pending": True}, api_url=member.api_url.removesuffix("/patroni"),
             timeout=wait_seconds)
        restarted.append(member.name)
    return restarted


def dynamic_config(settings: Settings, env: Environment) -> dict[str, Any]:
    """GET /config: the cluster's dynamic configuration as Patroni keeps it in the DCS (timing, synchronous mode,
    the PostgreSQL parameters every member shares, pause)."""
    _, document = _get(settings, env, "/config")
    if not isinstance(document, dict):
        raise UnavailableError(f"Patroni's /config of {env.name!r} is not a JSON object")
    return document


def pause(settings: Settings, env: Environment, paused: bool) -> None:
    """Patroni's maintenance mode on or off for the whole cluster (PATCH /config {"pause": ...}): while paused,
    Patroni neither fails over nor restarts PostgreSQL, and stopping Patroni leaves PostgreSQL running."""
    post(settings, env, "/config", {"pause": paused}, method="PATCH")

"""An environment's replicas: local ones db-create-replica recorded, or a remote one's from cuisine-db.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from cuisine_db.config import REPLICA_NAME, Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.postgres import topology
from cuisine_db.postgres.target import Target

RESERVED = ("any", "primary")
# libpq parameters a replica's dsn may set; who connects, to which database and with which password stay the
# environment's (a physical replica has the primary's roles and databases).
_WHERE = ("host", "hostaddr", "port", "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout",
          "target_session_attrs", "gssencmode", "channel_binding")


@dataclass(frozen=True, slots=True)
class Member:
    """One replica: where connections go, its slot on the primary, and its record when the tool made it."""

    name: str
    target: Target
    slot: str | None
    node: topology.Node | None  # a local replica's record; None for a remote one

    @property
    def local(self) -> bool:
        return self.node is not None


def check_name(name: str) -> str:
    """A replica name: it becomes a folder, a slot name (cuisine_<name>) and an application_name."""
    if not REPLICA_NAME.match(name or "") or name in RESERVED:
        raise UsageError(f"bad replica name {name!r}",
                         hint="lowercase letters, digits and '_', starting with a letter, at most 31 characters; "
                              "not 'any' or 'primary'")
    return name


def slot_name(name: str) -> str:
    return f"cuisine_{name}"


def local_target(settings: Settings, env: Environment, node: topology.Node) -> Target:
    home = topology.home_of(settings, env, node)
    return Target(name=node.name, params={"host": "127.0.0.1", "port": str(node.port)}, datadir=home / "data")


def patroni_slot(name: str) -> str:
    """The physical slot Patroni keeps on the leader for a member (its name, lowercased, other characters '_')."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def members(settings: Settings, env: Environment, *, streaming_only: bool = False) -> list[Member]:
    """The environment's replicas, by name; for a Patroni environment, every member but the leader as Patroni
    reports them now (`streaming_only`: only those Patroni says stream from the leader)."""
    if env.patroni is not None:
        from cuisine_db.postgres import patroni

        view = patroni.cluster(settings, env)
        return [Member(m.name, Target(name=m.name, params={"host": m.host, "port": str(m.port)}),
                       patroni_slot(m.name), None)
                for m in view.members if not m.is_leader and (m.streaming or not streaming_only)]
    if env.is_local:
        nodes = topology.load(settings, env).replicas
        return sorted((Member(node.name, local_target(settings, env, node), node.slot, node) for node in nodes),
                      key=lambda member: member.name)
    found = []
    for name, ref in sorted(env.replicas.items()):
        params = psycopg.conninfo.conninfo_to_dict(ref.dsn)
        where = {key: str(value) for key, value in params.items() if key in _WHERE and value is not None}
        found.append(Member(name, Target(name=name, params=where), ref.slot, None))
    return found


def find(settings: Settings, env: Environment, name: str) -> Member:
    """One replica by name; an unknown name is bad input that lists the known ones."""
    if env.patroni is None:
        check_name(name)
    elif not name or len(name) > 64 or not name.isprintable():
        raise UsageError(f"bad member name {name!r}", hint=f"make db-replicas env={env.name} lists the members")
    known = members(settings, env)
    for member in known:
        if member.name == name:
            return member
    listed = ", ".join(member.name for member in known) or "none yet"
    hint = (f"make db-create-replica env={env.name} name={name} makes one" if env.is_local
            else f"make db-replicas env={env.name} lists Patroni's members" if env.patroni is not None
            else f"list it under [environments.{env.name}.replicas.{name}] in cuisine-db.toml")
    raise UsageError(f"environment {env.name!r} has no replica {name!r} (replicas: {listed})", hint=hint)

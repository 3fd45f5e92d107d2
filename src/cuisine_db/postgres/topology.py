"""Where a local environment's servers are: its primary, its streaming replicas, and former primaries.

The file `<state_dir>/<env>/replicas.json` records what db-create-replica, db-promote-replica and
db-drop-replica did, so that every command finds the same servers:

- `primary`: absent while the environment's own cluster (`<env>/data` on the configured port) is the
  primary; after a promotion, the promoted replica's folder and port. `cluster_for()` and `connect()`
  follow it, so every command goes to the new primary.
- `replicas`: each streaming replica's name, folder (relative to `<env>/`), port and replication slot.
- `former`: primaries a promotion left behind. They are stopped, never started again by the tool (they
  would accept writes the new primary never sees), and need a rebuild: db-drop-replica removes one.

Written with records.atomic_write under a lock; a missing file is the plain environment.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

from cuisine_db import records
from cuisine_db.config import REPLICA_NAME, Environment, Settings
from cuisine_db.errors import UnavailableError

FILE = "replicas.json"
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Node:
    """One local server of an environment: its folder under `<state_dir>/<env>/` and its port."""

    name: str
    home: str  # relative to the environment's folder: "." for its own cluster, "replicas/<name>" for a replica
    port: int
    slot: str | None = None  # the replica's slot on the primary
    since: str = ""  # ISO time it took this place
    note: str = ""


@dataclass(frozen=True, slots=True)
class Topology:
    """The recorded shape of a local environment."""

    primary: Node | None = None  # None: the environment's own cluster
    replicas: tuple[Node, ...] = ()
    former: tuple[Node, ...] = ()

    def replica(self, name: str) -> Node | None:
        return next((node for node in self.replicas if node.name == name), None)

    def former_primary(self, name: str) -> Node | None:
        return next((node for node in self.former if node.name == name), None)

    def names(self) -> set[str]:
        return {node.name for node in (*self.replicas, *self.former)} | ({self.primary.name} if self.primary else set())

    def with_replica(self, node: Node) -> Topology:
        return replace(self, replicas=(*[r for r in self.replicas if r.name != node.name], node))

    def without(self, name: str) -> Topology:
        return replace(self, replicas=tuple(r for r in self.replicas if r.name != name),
                       former=tuple(f for f in self.former if f.name != name))


@dataclass(slots=True)
class Editor:
    """The topology being changed inside `editing()`; `set()` writes each step as soon as it is true."""

    file: Path
    current: Topology

    def set(self, topology: Topology) -> None:
        _write(self.file, topology)
        self.current = topology


def path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / FILE


def replica_home(name: str) -> str:
    return f"replicas/{name}"


def _checked(node: Node, file: Path) -> Node:
    # Folders are removed by db-drop-replica: only the two shapes the tool writes are ever accepted.
    if node.home not in (".", replica_home(node.name)) or not REPLICA_NAME.match(node.name):
        raise UnavailableError(f"{file} is damaged: unexpected folder {node.home!r} for {node.name!r}", hint=_HINT)
    return node


_HINT = ("it records the environment's primary and replicas; restore it from the journal's replica entries, or move "
         "it away to fall back to the configured cluster")


def load(settings: Settings, env: Environment) -> Topology:
    """The environment's recorded topology; the plain environment when nothing was recorded (or it is remote); a
    damaged file stops every command that needs the servers (exit 3, as an unreadable one, naming it)."""
    if not env.is_local:
        return Topology()
    file = path(settings, env)
    try:
        recorded = records.load(Topology, file)
    except records.DamagedRecord as exc:
        raise UnavailableError(exc.message, hint=_HINT) from None
    except OSError as exc:
        raise UnavailableError(f"cannot read {file}: {exc}", hint=_HINT) from None
    if recorded is None:
        return Topology()
    for node in (*([recorded.primary] if recorded.primary else []), *recorded.replicas, *recorded.former):
        _checked(node, file)
    return recorded


def _write(file: Path, topology: Topology) -> None:
    body = {"format": FORMAT, "written_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "primary": asdict(topology.primary) if topology.primary else None,
            "replicas": [asdict(node) for node in topology.replicas],
            "former": [asdict(node) for node in topology.former]}
    records.atomic_write(file, records.encode(body, sort_keys=False))


@contextmanager
def editing(settings: Settings, env: Environment) -> Iterator[Editor]:
    """Hold the environment's topology lock while a replica command works.

    One replica command at a time per environment: two creations must not pick the same port or name."""
    folder = settings.env_dir(env)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".replicas.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield Editor(path(settings, env), load(settings, env))
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def primary_node(settings: Settings, env: Environment) -> Node:
    """The node serving as the environment's primary now: a promoted replica, or its own cluster."""
    recorded = load(settings, env).primary
    if recorded is not None:
        return recorded
    return Node(name="primary", home=".", port=env.port or 0)


def home_of(settings: Settings, env: Environment, node: Node) -> Path:
    """A node's folder: the environment's own for its first cluster, `replicas/<name>` for the others."""
    return settings.env_dir(env) if node.home == "." else settings.env_dir(env) / node.home

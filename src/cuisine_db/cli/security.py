"""`cuisine-db security ...`: the runbook's Security Management (users, permissions, audit, checks)."""

from __future__ import annotations

import os
import stat
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cuisine_db import security
from cuisine_db.cli import audit_render
from cuisine_db.cli.common import (
    EnvOption,
    JsonOption,
    ReplicaOption,
    YesOption,
    environment,
    out,
    print_json,
    routed,
    say,
    settings,
    word_asker,
)
from cuisine_db.cli.render import MarkdownOption, OverwriteOption, check_output, show_findings, write_output
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.findings import worst
from cuisine_db.security import commands, typed_input
from cuisine_db.security.defaults import AUDIT_CLASSES as DEFAULT_CLASSES
from cuisine_db.security.defaults import CONNECTION_LIMIT as DEFAULT_CONNECTION_LIMIT

app = typer.Typer(help="Users, permissions, the tool's own roles, audit logging and security checks.",
                  no_args_is_help=True)

UserOption = Annotated[str, typer.Option("--username", "-u", help="The role (lowercase letters, digits, _).")]
PasswordEnvOption = Annotated[str | None, typer.Option(
    "--password-env", help="Read the password from this environment variable (it is then removed).")]
PasswordFileOption = Annotated[Path | None, typer.Option(
    "--password-file", help="Read the password from the first line of this file.")]
# The Makefile passes password= through the environment; this says it was typed on make's command line.
FromMakeOption = Annotated[bool, typer.Option("--from-make-command-line", hidden=True)]
ValidUntilOption = Annotated[str | None, typer.Option(
    "--valid-until", help="The password stops working after this day (YYYY-MM-DD).")]
ConnectionLimitOption = Annotated[int, typer.Option("--connection-limit", min=1, max=10_000,
                                                   help="Sessions the role may hold at once.")]
# Variables make puts in its recipes' environment that can carry what was typed after `make`.
_MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "password", "CUISINE_DB_PASSWORD")


def _day(value: str | None, what: str) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise UsageError(f"{what} {value!r} is not a date", hint="write it as YYYY-MM-DD") from None


def _scrub_environment() -> None:
    """Drop what make passed along (password= included) so no child process (pg_ctl, the server) inherits it."""
    for name in _MAKE_VARIABLES:
        os.environ.pop(name, None)


def _from_file(path: Path) -> security.Secret:
    try:
        info = path.stat()
        first = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read password file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"password file {path} is not UTF-8 text") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        say(f"[yellow]warning:[/] {path} can be read by other users; chmod 600 it")
    if not first or not first[0]:
        raise UsageError(f"password file {path} is empty")
    return security.Secret(first[0])


def _prompt(username: str) -> security.Secret:
    value = typer.prompt(f"New password for {username}", hide_input=True, confirmation_prompt=True,
                         prompt_suffix=": ", err=True)
    return security.Secret(value)


def read_password(username: str, *, password_env: str | None, password_file: Path | None,
                  from_make: bool) -> tuple[security.Secret, str]:
    """The password and where it came from: a variable, a file, a no-echo prompt (asked twice), or stdin."""
    if password_env and password_file:
        raise UsageError("give the password one way: password_env= or password_file=, not both")
    try:
        if password_env:
            value = os.environ.pop(password_env, "")
            if not value:
                raise UsageError(f"${password_env} is not set or is empty")
            if from_make:
                say("[yellow]warning:[/] password= on the make command line lands in your shell history; next time "
                    "leave it out to be asked without echo, or use password_file=")
                return security.Secret(value), "the make command line"
            return security.Secret(value), f"${password_env}"
        if password_file:
            return _from_file(password_file), f"file {password_file}"
        if sys.stdin.isatty():
            return _prompt(username), "prompt"
        line = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not line:
            raise UsageError("no password: standard input is empty",
                             hint="pipe one line, use password_file=, or run in a terminal to be asked")
        return security.Secret(line), "standard input"
    finally:
        _scrub_environment()


def _new_password(username: str, valid_until: str | None, *, password_env: str | None,
                  password_file: Path | None, from_make: bool) -> tuple[date | None, security.Secret, str]:
    """create-user's and update-password's expiry and new password (and where it came from); the role name and
    the day are checked before a password is asked for that the command would then refuse."""
    expires = _day(valid_until, "valid_until")
    typed_input.role_name(username)
    password, source = read_password(username, password_env=password_env, password_file=password_file,
                                     from_make=from_make)
    return expires, password, source


@app.command("create-user")
def create_user(
    username: UserOption,
    env: EnvOption = None,
    password_env: PasswordEnvOption = None,
    password_file: PasswordFileOption = None,
    from_make: FromMakeOption = False,
    connection_limit: ConnectionLimitOption = DEFAULT_CONNECTION_LIMIT,
    valid_until: ValidUntilOption = None,
    json: JsonOption = False,
) -> None:
    """Create a login role (make db-create-user); the server receives only a SCRAM verifier of its password."""
    s = settings()
    chosen = environment(env)
    expires, password, source = _new_password(username, valid_until, password_env=password_env,
                                              password_file=password_file, from_make=from_make)
    result = commands.create_user(s, chosen, username, password, supplied_by=source,
                                  connection_limit=connection_limit, valid_until=expires)
    _show_user_change(result, json)


def _show_user_change(result: security.UserChange, json: bool) -> None:
    if json:
        print_json(result)
        return
    expiry = f", password valid until {result.valid_until}" if result.valid_until else ""
    say(f"{result.env}: {result.action} role {result.username} (connection limit {result.connection_limit}{expiry}); "
        "the server received only a SCRAM-SHA-256 verifier")
    for note in result.notes:
        say(f"  {note}")


@app.command("update-password")
def update_password(
    username: UserOption,
    env: EnvOption = None,
    password_env: PasswordEnvOption = None,
    password_file: PasswordFileOption = None,
    from_make: FromMakeOption = False,
    valid_until: ValidUntilOption = None,
    json: JsonOption = False,
) -> None:
    """Set a new password (make db-update-password): asked twice without echo, or one line of standard input."""
    s = settings()
    chosen = environment(env)
    expires, password, source = _new_password(username, valid_until, password_env=password_env,
                                              password_file=password_file, from_make=from_make)
    result = commands.update_password(s, chosen, username, password, supplied_by=source, valid_until=expires)
    _show_user_change(result, json)


@app.command("drop-user")
def drop_user(
    username: UserOption,
    env: EnvOption = None,
    reassign_to: Annotated[str | None, typer.Option("--reassign-to", help="Give the role's objects to this role.")
                           ] = None,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """Drop a role after showing what it owns, holds and belongs to (make db-drop-user); asks first."""
    chosen = environment(env)
    plan = commands.drop_user(settings(), chosen, username, reassign_to, yes=yes, ask=word_asker(chosen),
                              show=(lambda _: None) if json else _show_drop_plan)
    if json:
        print_json({"dropped": plan.username, **{k: getattr(plan, k) for k in security.DropPlan.__slots__}})
    else:
        moved = f"; its objects now belong to {plan.reassign_to}" if plan.reassign_to and plan.owned_here else ""
        say(f"{chosen.name}: dropped role {plan.username}{moved}")


def _show_drop_plan(plan: security.DropPlan) -> None:
    if plan.dependencies:
        table = Table("database", "kind", "object", title=f"what {plan.username} owns or holds privileges on")
        for dep in plan.dependencies:
            table.add_row(dep.database, dep.kind, dep.object or "(in another database)")
        out.print(table)
    else:
        out.print(f"{plan.username} owns nothing and holds no privileges on objects")
    for membership in plan.memberships:
        out.print(f"{plan.username} {membership.direction} {membership.role}")
    if plan.sessions:
        out.print(f"[yellow]{plan.sessions} session(s) are connected as {plan.username} now; they stay until they end"
                  "[/]")


def _show_grant(result: security.GrantChange, json: bool) -> None:
    if json:
        print_json(result)
        return
    what = f"every table in {result.schema} (and future ones)" if result.all_tables else ", ".join(result.tables)
    word = "to" if result.action == "granted" else "from"
    say(f"{result.env}: {result.action} {', '.join(result.privileges)} on {what} {word} {result.username}")
    if result.default_privileges_for:
        say(f"  default privileges follow tables created by {', '.join(result.default_privileges_for)}")
    if result.sequences:
        say(f"  and USAGE on the serial sequences {', '.join(result.sequences)}")
    for row in result.remaining:
        say(f"  [yellow]{result.username} still has {row.privileges} on {row.schema}.{row.table_name} ({row.via})[/]")


PermissionOption = Annotated[str, typer.Option("--permission", "-p", help="SELECT, SELECT,INSERT, ... or ALL.")]
TablesOption = Annotated[str, typer.Option("--tables", "-t", help="users,recipes or ALL (also future tables).")]
SchemaOption = Annotated[str, typer.Option("--schema", help="Schema of the tables.")]


@app.command("grant")
def grant(username: UserOption, permission: PermissionOption, tables: TablesOption, env: EnvOption = None,
          schema: SchemaOption = "public", json: JsonOption = False) -> None:
    """Grant table privileges (make db-grant-permission); all or nothing, existing tables only."""
    _change_privileges(username, permission, tables, env, schema, json, grant=True)


@app.command("revoke")
def revoke(username: UserOption, permission: PermissionOption, tables: TablesOption, env: EnvOption = None,
           schema: SchemaOption = "public", json: JsonOption = False) -> None:
    """Revoke table privileges (make db-revoke-permission), and say what the role still holds another way."""
    _change_privileges(username, permission, tables, env, schema, json, grant=False)


def _change_privileges(username: str, permission: str, tables: str, env: str | None, schema: str, json: bool, *,
                       grant: bool) -> None:
    result = commands.change_privileges(settings(), environment(env), grant=grant, username=username,
                                        permission=permission, tables=tables, schema=schema)
    _show_grant(result, json)


@app.command("permissions")
def permissions(
    env: EnvOption = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help="Only this role.")] = None,
    json: JsonOption = False,
) -> None:
    """Who can do what on which table, including through role membership and PUBLIC (make db-permissions)."""
    chosen = environment(env)
    report = security.permissions(settings(), chosen, username)
    if json:
        print_json(report)
        return
    table = Table("role", "table", "privileges", "through", title=f"table privileges on {chosen.name}")
    for row in report.permissions:
        name = row.table_name if row.schema in ("public", "*") else f"{row.schema}.{row.table_name}"
        table.add_row(row.role, name, row.privileges, row.via)
    out.print(table)
    if report.defaults:
        defaults = Table("creator", "schema", "future", "grantee", "privileges", title="default privileges")
        for item in report.defaults:
            defaults.add_row(item.creator, item.schema, item.kind, item.grantee, item.privileges)
        out.print(defaults)


@app.command("setup-roles")
def setup_roles(
    env: EnvOption = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="New passwords for the roles (local clusters).")] = False,
    json: JsonOption = False,
) -> None:
    """Create or repair the roles the tool connects as: backup, monitoring, operator (least privilege)."""
    chosen = environment(env)
    result = commands.setup_roles(settings(), chosen, rotate=rotate)
    if json:
        print_json(result)
        return
    table = Table("purpose", "role", "done", "member of", "grants", "password", title=f"tool roles on {chosen.name}")
    for role in result.roles:
        table.add_row(role.purpose, role.role, role.action, ", ".join(role.memberships), "; ".join(role.grants),
                      role.password)
    out.print(table)
    for role in result.roles:
        for note in role.notes:
            say(f"[yellow]{role.role}:[/] {note}")
    if result.config_snippet:
        say("commands use these roles once cuisine-db.toml names them, with their passwords by reference:")
        out.print(result.config_snippet, markup=False)


@app.command("enable-audit")
def enable_audit(
    env: EnvOption = None,
    classes: Annotated[str, typer.Option("--classes", help="pgaudit.log classes.")] = DEFAULT_CLASSES,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """Audit logging (make db-enable-audit): pgaudit where installed, else log_statement='ddl'; connection logs."""
    chosen = environment(env)
    result = commands.enable_audit(settings(), chosen, classes=classes, yes=yes, ask=word_asker(chosen))
    if json:
        print_json(result)
        return
    for change in result.changes:
        restart = " (restart)" if change.needs_restart else ""
        say(f"  {change.name}: {change.old} -> {change.new}{restart}")
    if result.restarted:
        say(f"{chosen.name}: restarted the server to load the new settings")
    say(f"{chosen.name}: {result.statement}")
    if result.misses:
        say("  what that misses:")
        for miss in result.misses:
            say(f"  - {miss}")


@app.command("audit-report")
def audit_report(
    env: EnvOption = None,
    start: Annotated[str | None, typer.Option("--start", help="First day, YYYY-MM-DD (default: 30 days ago).")
                     ] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day, YYYY-MM-DD, inclusive (default: today, UTC).")
                   ] = None,
    hours: Annotated[str, typer.Option("--hours", help="Usual login hours, UTC (e.g. 7-20).")] = "7-20",
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Where to write the Markdown record.")] = None,
    json: JsonOption = False,
    replica: ReplicaOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Connections, failed logins, role and DDL changes, writes, superusers and unusual activity from the logs."""
    s = settings()
    chosen = environment(env)
    last = _day(end, "end") or datetime.now(UTC).date()
    first = _day(start, "start") or last - timedelta(days=29)
    check_output(markdown, overwrite)
    thresholds = security.Thresholds(work_hours=security.parse_hours(hours))
    report = security.audit_report(s, chosen, start=first, end=last, thresholds=thresholds,
                                   target=routed(chosen, replica, "db-audit-report"))
    if markdown is None:
        # The tool's own reports folder: a report of the same days is simply brought up to date.
        path = s.env_dir(chosen) / "reports" / f"audit-{chosen.name}-{first}-to-{last}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_output(path, audit_render.markdown(report), overwrite=True)
    else:
        write_output(markdown, audit_render.markdown(report), overwrite=overwrite)
    if json:
        print_json(report)
    else:
        audit_render.show(report)


@app.command("check")
def check(
    env: EnvOption = None,
    admin: Annotated[bool, typer.Option("--admin", help="Connect as the admin role (sees pg_authid).")] = False,
    markdown: MarkdownOption = None,
    json: JsonOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """CIS-benchmark checks SQL can see, plus local file modes (make db-security-check); exit 1 on high findings."""
    chosen = environment(env)
    check_output(markdown, overwrite)
    findings = security.security_check(settings(), chosen, admin=admin)
    show_findings(findings, title=f"security check of {chosen.name}", json=json, markdown=markdown,
                  clean="no findings", overwrite=overwrite)
    high = [f for f in findings if f.severity in ("error", "critical")]
    if high:
        raise FailedError(f"{len(high)} high finding(s) on {chosen.name} (worst: {worst(high)})",
                          hint="run the fix of each, then make db-security-check again")

"""The security commands that change something (db-create-user, db-update-password, db-drop-user, db-grant- and
db-revoke-permission, security setup-roles, db-enable-audit), each journaled whoever calls it. Like the package,
the modules doing the work are imported on first use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from cuisine_db.config import Environment, Settings
from cuisine_db.ops.confirmation import AskWord
from cuisine_db.ops.journal import journaled
from cuisine_db.security.defaults import AUDIT_CLASSES, CONNECTION_LIMIT

if TYPE_CHECKING:
    from cuisine_db.security.audit_setup import AuditSetup
    from cuisine_db.security.grants import GrantChange
    from cuisine_db.security.passwords import Secret
    from cuisine_db.security.roles import RolesSetup
    from cuisine_db.security.users import DropPlan, UserChange


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def create_user(settings: Settings, env: Environment, username: str, password: Secret, *, supplied_by: str,
                connection_limit: int = CONNECTION_LIMIT, valid_until: date | None = None) -> UserChange:
    """make db-create-user, journaled with where the password came from (`supplied_by`), never the password."""
    from cuisine_db.security import users

    arguments = {"username": username, "supplied_by": supplied_by, "connection_limit": connection_limit,
                 "valid_until": _day(valid_until)}
    with journaled(settings, env, "db-create-user", arguments):
        return users.create_user(settings, env, username, password, connection_limit=connection_limit,
                                 valid_until=valid_until)


def update_password(settings: Settings, env: Environment, username: str, password: Secret, *, supplied_by: str,
                    valid_until: date | None = None) -> UserChange:
    """make db-update-password, journaled with where the password came from (`supplied_by`), never the password."""
    from cuisine_db.security import users

    with journaled(settings, env, "db-update-password", {"username": username, "supplied_by": supplied_by,
                                                         "valid_until": _day(valid_until)}):
        return users.update_password(settings, env, username, password, valid_until=valid_until)


def drop_user(settings: Settings, env: Environment, username: str, reassign_to: str | None = None, *,
              yes: bool = False, ask: AskWord | None = None,
              show: Callable[[DropPlan], None] = lambda _: None) -> DropPlan:
    """make db-drop-user, journaled with how much the role owned: the plan, given to `show` before the confirmation,
    then the drop."""
    from cuisine_db.security import users

    with journaled(settings, env, "db-drop-user", {"username": username, "reassign_to": reassign_to}) as entry:
        plan = users.plan_drop(settings, env, username, reassign_to)
        entry.details["owned"] = len(plan.owned_here)
        show(plan)
        users.drop_user(settings, env, plan, yes=yes, ask=ask)
    return plan


def change_privileges(settings: Settings, env: Environment, *, grant: bool, username: str, permission: str,
                      tables: str, schema: str = "public") -> GrantChange:
    """make db-grant-permission (`grant`) or db-revoke-permission, journaled under that name."""
    from cuisine_db.security import grants

    arguments = {"username": username, "permission": permission, "tables": tables, "schema": schema}
    with journaled(settings, env, "db-grant-permission" if grant else "db-revoke-permission", arguments):
        return grants.change(settings, env, grant=grant, username=username, permission=permission, tables=tables,
                             schema=schema)


def setup_roles(settings: Settings, env: Environment, *, rotate: bool = False) -> RolesSetup:
    """security setup-roles, journaled with what was done to each role."""
    from cuisine_db.security import roles

    with journaled(settings, env, "security setup-roles", {"rotate": rotate}) as entry:
        result = roles.setup_roles(settings, env, rotate=rotate)
        entry.details["roles"] = {role.role: role.action for role in result.roles}
    return result


def enable_audit(settings: Settings, env: Environment, *, classes: str = AUDIT_CLASSES, yes: bool = False,
                 ask: AskWord | None = None) -> AuditSetup:
    """make db-enable-audit, journaled with the mode chosen and whether the server was restarted."""
    from cuisine_db.security import audit_setup

    with journaled(settings, env, "db-enable-audit", {"classes": classes}) as entry:
        result = audit_setup.enable_audit(settings, env, classes=classes, yes=yes, ask=ask)
        entry.details.update(mode=result.mode, restarted=result.restarted, complete=result.complete)
    return result

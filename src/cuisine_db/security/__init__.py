"""Security management: users, passwords, grants, the tool's least-privilege roles, audit logging and checks.

Names are imported on first use, so commands outside this area start without loading it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cuisine_db.security.audit_reporting import AuditReport, Thresholds, audit_report, parse_hours
    from cuisine_db.security.audit_setup import AuditSetup, enable_audit
    from cuisine_db.security.cis_checks import security_check
    from cuisine_db.security.grants import GrantChange, PermissionReport, change, permissions
    from cuisine_db.security.passwords import Secret
    from cuisine_db.security.roles import RolesSetup, setup_roles
    from cuisine_db.security.users import DropPlan, UserChange, create_user, drop_user, plan_drop, update_password

_MODULES = {
    "audit_reporting": ("AuditReport", "Thresholds", "audit_report", "parse_hours"),
    "audit_setup": ("AuditSetup", "enable_audit"),
    "cis_checks": ("security_check",),
    "grants": ("GrantChange", "PermissionReport", "change", "permissions"),
    "passwords": ("Secret",),
    "roles": ("RolesSetup", "setup_roles"),
    "users": ("DropPlan", "UserChange", "create_user", "drop_user", "plan_drop", "update_password"),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "AuditReport", "AuditSetup", "DropPlan", "GrantChange", "PermissionReport", "RolesSetup", "Secret", "Thresholds",
    "UserChange", "audit_report", "change", "create_user", "drop_user", "enable_audit", "parse_hours", "permissions",
    "plan_drop", "security_check", "setup_roles", "update_password",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    loaded = importlib.import_module(f"{__name__}.{module}")
    # Bind every name the submodule offers, so each is looked up once.
    for offered in _MODULES[module]:
        globals()[offered] = getattr(loaded, offered)
    return globals()[name]

"""Security management: users, passwords, grants, the tool's least-privilege roles, audit logging and checks."""

from cuisine_db.security.audit_report import AuditReport, Thresholds, audit_report, parse_hours
from cuisine_db.security.audit_setup import AuditSetup, enable_audit
from cuisine_db.security.checks import security_check
from cuisine_db.security.grants import GrantChange, PermissionReport, change, permissions
from cuisine_db.security.passwords import Secret
from cuisine_db.security.roles import RolesSetup, setup_roles
from cuisine_db.security.users import DropPlan, UserChange, create_user, drop_user, plan_drop, update_password

__all__ = [
    "AuditReport",
    "AuditSetup",
    "DropPlan",
    "GrantChange",
    "PermissionReport",
    "RolesSetup",
    "Secret",
    "Thresholds",
    "UserChange",
    "audit_report",
    "change",
    "create_user",
    "drop_user",
    "enable_audit",
    "parse_hours",
    "permissions",
    "plan_drop",
    "security_check",
    "setup_roles",
    "update_password",
]

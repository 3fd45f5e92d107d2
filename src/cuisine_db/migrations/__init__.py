"""Schema migrations: dbmate-compatible files, an advisory-locked runner, status, verify."""

from cuisine_db.migrations.files import MigrationFile, create, discover
from cuisine_db.migrations.runner import RunResult, StepResult, accept_edit, migrate, rollback, status
from cuisine_db.migrations.state import MigrationState

__all__ = [
    "MigrationFile", "MigrationState", "RunResult", "StepResult", "accept_edit", "create", "discover",
    "migrate", "rollback", "status",
]

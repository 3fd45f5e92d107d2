"""Defaults shared by the security services and the CLI options (which must not load the services)."""

from __future__ import annotations

AUDIT_CLASSES = "ddl, role, write"
CONNECTION_LIMIT = 20

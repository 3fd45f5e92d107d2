"""Integrity and corruption: amcheck, pg_amcheck, page reads, and the constraints the server does not re-check."""

from cuisine_db.ops.integrity.corruption import check_corruption
from cuisine_db.ops.integrity.damage import Damage
from cuisine_db.ops.integrity.db_verify import CHECKS, DEFAULT_JOBS, Check, IntegrityReport, verify_integrity

__all__ = ["CHECKS", "DEFAULT_JOBS", "Check", "Damage", "IntegrityReport", "check_corruption", "verify_integrity"]

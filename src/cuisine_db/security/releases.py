"""PostgreSQL's support calendar (reference data, from postgresql.org's versioning policy).

Each major version gets five years of fixes; its final minor release comes in November. Update this table
when a new major version ships.
"""

from __future__ import annotations

from datetime import date

END_OF_LIFE = {
    11: date(2023, 11, 9),
    12: date(2024, 11, 21),
    13: date(2025, 11, 13),
    14: date(2026, 11, 12),
    15: date(2027, 11, 11),
    16: date(2028, 11, 9),
    17: date(2029, 11, 8),
    18: date(2030, 11, 14),
}
NEWEST_KNOWN = max(END_OF_LIFE)


def end_of_life(major: int) -> date | None:
    """The day a major version stops receiving fixes; None for versions newer than this table."""
    if major > NEWEST_KNOWN:
        return None
    return END_OF_LIFE.get(major, date(2000, 1, 1))

"""@pytest.mark.postgres(min=, max=): which session servers a version-bound test runs on, and what a skip says."""

from __future__ import annotations

from conftest import version_skip


def test_inside_the_range_runs() -> None:
    assert version_skip(15, 15, None) is None
    assert version_skip(18, 15, None) is None
    assert version_skip(14, None, 14) is None
    assert version_skip(15, 14, 15) is None


def test_outside_the_range_says_which_versions_and_why() -> None:
    assert version_skip(14, 15, None) == "runs on PostgreSQL 15 and later"
    assert version_skip(18, None, 14, "client-side") == "runs on PostgreSQL 14 and earlier: client-side"
    assert version_skip(18, 14, 14) == "runs on PostgreSQL 14"
    assert version_skip(18, 14, 15) == "runs on PostgreSQL 14 to 15"

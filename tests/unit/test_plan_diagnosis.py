"""The plan diagnosis: scans that throw rows away, estimates off by 10x, sorts and hashes spilling to disk."""

from __future__ import annotations

from typing import Any

from cuisine_db.diagnose.plan_diagnosis import diagnose


def scan(**extra: Any) -> dict[str, Any]:
    return {"Node Type": "Seq Scan", "Relation Name": "recipes", "Alias": "recipes", "Plan Rows": 20, **extra}


def test_a_selective_sequential_scan_is_flagged_with_the_fix() -> None:
    analyzed = scan(Filter="(user_id = 563)", **{"Actual Rows": 915, "Actual Loops": 1,
                                                 "Rows Removed by Filter": 45_000, "Plan Rows": 900})
    [finding] = diagnose(analyzed, "production", {"recipes": 45_915})
    assert finding.check == "seq-scan-filter" and "read 45,915 rows to keep 915" in finding.evidence
    assert finding.fix.startswith("make db-analyze-table env=production table=recipes")
    planned = scan(Filter="(user_id = $1)")
    assert [f.check for f in diagnose(planned, "production", {"recipes": 50_000})] == ["seq-scan-filter"]
    # A scan that keeps most rows is what a sequential scan is for.
    keeps = scan(Filter="(servings > 1)", **{"Actual Rows": 40_000, "Actual Loops": 1, "Rows Removed by Filter": 100,
                                             "Plan Rows": 40_000})
    assert diagnose(keeps, "production", {"recipes": 40_100}) == []


def test_estimate_errors_of_ten_times_are_flagged_but_not_under_a_limit() -> None:
    wrong = scan(**{"Plan Rows": 8, "Actual Rows": 915, "Actual Loops": 1})
    [finding] = diagnose(wrong, "staging", {"recipes": 900})
    assert finding.check == "row-estimate" and "114x more" in finding.evidence
    assert "make db-vacuum-analyze env=staging table=recipes" in finding.fix
    limited = {"Node Type": "Limit", "Plan Rows": 20, "Actual Rows": 20, "Actual Loops": 1,
               "Plans": [{"Node Type": "Sort", "Plan Rows": 915, "Actual Rows": 20, "Actual Loops": 1}]}
    assert diagnose(limited, "staging", {}) == []
    never_ran = scan(**{"Plan Rows": 5_000, "Actual Rows": 0, "Actual Loops": 0})
    assert diagnose(never_ran, "staging", {}) == []


def test_spills_to_disk_are_flagged_with_a_work_mem_suggestion() -> None:
    plan = {"Node Type": "Hash Join", "Plan Rows": 10, "Plans": [
        {"Node Type": "Sort", "Plan Rows": 10, "Sort Method": "external merge", "Sort Space Type": "Disk",
         "Sort Space Used": 3_528},
        {"Node Type": "Hash", "Plan Rows": 10, "Hash Batches": 4, "Original Hash Batches": 1,
         "Peak Memory Usage": 4_100},
        {"Node Type": "Aggregate", "Plan Rows": 10, "HashAgg Batches": 5, "Disk Usage": 12_000},
    ]}
    findings = {f.check: f for f in diagnose(plan, "development", {})}
    assert set(findings) == {"sort-spill", "hash-spill", "hashagg-spill"}
    assert "SET work_mem = '8MB'" in findings["sort-spill"].fix
    assert "4 batches (planned 1)" in findings["hash-spill"].evidence

"""The lint corpus: every file in tests/lint_corpus is classified as its header says (verdict and rules)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cuisine_db.findings import worst
from cuisine_db.migrations.files import parse
from cuisine_db.migrations.lint import CHECKS, lint
from cuisine_db.migrations.lint_context import DEFAULT_MAJOR

CORPUS = Path(__file__).resolve().parents[1] / "lint_corpus"
FILES = sorted(CORPUS.glob("*.sql"))
BASE = FILES[0]
_HEADER = re.compile(r"^--\s*(?P<key>expect|rules|major|runtime|why):\s*(?P<value>.*)$", re.MULTILINE)


def header(path: Path) -> dict[str, str]:
    return {m.group("key"): m.group("value").strip() for m in _HEADER.finditer(path.read_text())}


def verdict(path: Path) -> tuple[str, set[str]]:
    """The worst unwaived severity ("ok" when none) and every rule that fired, waived or not."""
    major = int(header(path).get("major", DEFAULT_MAJOR))
    findings = lint(parse(path), major, [] if path == BASE else [parse(BASE)])
    level = worst(f for f in findings if f.severity != "info")
    return level or "ok", {finding.check for finding in findings}


def test_the_corpus_is_large_and_every_file_explains_itself() -> None:
    assert len(FILES) >= 60
    for path in FILES:
        fields = header(path)
        assert fields.get("expect") in ("ok", "warning", "error"), path.name
        assert fields.get("rules") and len(fields.get("why", "")) > 20, path.name


def test_every_rule_is_exercised_by_the_corpus() -> None:
    named = {rule for path in FILES for rule in header(path)["rules"].split() if rule != "none"}
    assert CHECKS | {"waiver-unknown-rule", "waiver-without-reason"} == named


@pytest.mark.parametrize("path", FILES, ids=[path.stem.split("_", 1)[1] for path in FILES])
def test_corpus_file_is_classified_as_its_header_says(path: Path) -> None:
    fields = header(path)
    expected_rules = set() if fields["rules"] == "none" else set(fields["rules"].split())
    assert verdict(path) == (fields["expect"], expected_rules), fields["why"]


def test_every_finding_names_lock_blocking_duration_and_fix() -> None:
    for path in FILES:
        for finding in lint(parse(path), DEFAULT_MAJOR, [parse(BASE)]):
            assert finding.fix, path.name
            if " takes " in finding.evidence:
                assert "blocking" in finding.evidence and " for " in finding.evidence, finding.evidence

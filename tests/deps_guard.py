"""Fails the run when a test skips for lack of a Debian package that `make deps` installs (scripts/deps.txt).

A skip that a package would fix names it as "Debian's <package>" (or "(Debian packages)" after the names). Such
a skip is a failure when the package is installed (the test's own detection is wrong), and always under
CUISINE_DB_REQUIRE_DEPS=1, which .ci/run sets after `make deps` ran as root.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEPS_FILE = REPO / "scripts" / "deps.txt"


def listed_packages(deps_file: Path = DEPS_FILE) -> list[str]:
    """The package names of scripts/deps.txt, in order."""
    names = []
    for line in deps_file.read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            names.append(words[0])
    return names


def fixable_by(reason: str, packages: list[str]) -> list[str]:
    """The listed packages a skip reason says would let the test run (none unless it mentions Debian)."""
    if "Debian" not in reason:
        return []
    tokens = {token.rstrip(".") for token in re.split(r"[^A-Za-z0-9.+-]+", reason)}
    return [package for package in packages if package in tokens]


@cache
def missing_packages() -> frozenset[str]:
    """What scripts/deps.sh --missing reports: the listed packages dpkg does not have installed."""
    result = subprocess.run(["bash", str(REPO / "scripts" / "deps.sh"), "--missing"], capture_output=True,
                            text=True, timeout=60, check=True)
    return frozenset(result.stdout.split())


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple | list) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


class DepsGuard:
    """Collects the skips that name an installable package, and fails the session when there is one."""

    def __init__(self) -> None:
        self.offences: list[str] = []
        self.strict = os.environ.get("CUISINE_DB_REQUIRE_DEPS") == "1"

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.skipped:
            return
        reason = skip_reason(report)
        packages = fixable_by(reason, listed_packages())
        if not packages:
            return
        if self.strict or any(package not in missing_packages() for package in packages):
            self.offences.append(f"{report.nodeid}: {reason}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.offences and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.offences:
            return
        terminalreporter.section("skipped although make deps installs what they need", red=True)
        for offence in self.offences:
            terminalreporter.write_line(offence)


def pytest_configure(config: pytest.Config) -> None:
    # Under xdist the controller sees every worker's reports: the guard runs there (or in a plain run) only.
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(DepsGuard(), "cuisine_deps_guard")

"""make deps: one package list (scripts/deps.txt) read by the target, .ci/run and the skip guard of the suite."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from deps_guard import DEPS_FILE, fixable_by, listed_packages

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def reason_text(node: ast.expr) -> str | None:
    """A literal skip reason, with every {placeholder} of an f-string read as 15 (Debian's PostgreSQL)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(part.value) if isinstance(part, ast.Constant) else "15" for part in node.values)
    return None


def skip_reasons() -> list[tuple[str, str]]:
    """(where, reason) for every pytest.skip(...) and skipif(..., reason=...) under tests/."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            candidates: list[ast.expr] = []
            if node.func.attr == "skip" and node.args:
                candidates.append(node.args[0])
            if node.func.attr in ("skip", "skipif"):
                candidates += [kw.value for kw in node.keywords if kw.arg in ("reason", "msg")]
            for candidate in candidates:
                text = reason_text(candidate)
                if text is not None:
                    found.append((f"{path.relative_to(REPO)}:{node.lineno}", text))
    return found


def test_the_list_names_each_debian_package_once_with_what_needs_it() -> None:
    packages = listed_packages()
    assert len(packages) == len(set(packages)) >= 8
    assert {"postgresql-15", "postgresql-15-pgaudit", "postgresql-15-hypopg", "pgbouncer", "age", "zstd",
            "openssl"} <= set(packages)
    for line in DEPS_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, purpose = line.partition(" ")
            assert re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", name), line
            assert purpose.strip(), f"say what needs {name}"


def test_every_skip_a_debian_package_would_fix_names_a_listed_package() -> None:
    packages = listed_packages()
    reasons = skip_reasons()
    naming = [(where, reason) for where, reason in reasons if "Debian" in reason]
    assert len(naming) >= 8, reasons
    for where, reason in naming:
        assert fixable_by(reason, packages), f"{where}: names no package of scripts/deps.txt: {reason}"
    # A skip that names a listed package without saying "Debian" would slip past the guard.
    for where, reason in reasons:
        tokens = set(re.split(r"[^A-Za-z0-9.+-]+", reason))
        named = [package for package in packages if package in tokens]
        assert not named or "Debian" in reason, f"{where}: say \"Debian's {named[0]}\" in the reason: {reason}"
    covered = {package for _, reason in naming for package in fixable_by(reason, packages)}
    assert {"postgresql-15", "postgresql-15-pgaudit", "postgresql-15-hypopg", "pgbouncer", "age",
            "zstd"} <= covered


def test_make_demo_make_test_and_ci_go_through_make_deps() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^deps:.*\n\t@bash scripts/deps\.sh$", makefile, re.M)
    for target in ("demo", "test"):
        prerequisites = re.search(rf"^{target}:([^#\n]*)", makefile, re.M)
        assert prerequisites and "deps" in prerequisites.group(1).split(), target
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make deps" in ci and "make test" in ci
    words = set(re.split(r"[^A-Za-z0-9.+-]+", ci))
    assert not words & set(listed_packages()), ".ci/run keeps no package list of its own: scripts/deps.txt does"


def run_deps(lines: str, *args: str) -> subprocess.CompletedProcess[str]:
    """scripts/deps.sh on a list of our own, as an unprivileged user (nobody when the suite runs as root)."""
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "deps.txt"
        listing.write_text(lines, encoding="utf-8")
        listing.chmod(0o644)
        # A copy of the script beside the list: the checkout may sit in a folder nobody cannot pass (mktemp -d).
        script = Path(folder) / "deps.sh"
        shutil.copyfile(REPO / "scripts" / "deps.sh", script)
        script.chmod(0o644)
        Path(folder).chmod(0o755)
        as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*as_user, "env", f"CUISINE_DB_DEPS_FILE={listing}", "bash", str(script), *args],
                              capture_output=True, text=True, timeout=60, check=False)


def test_without_root_deps_names_what_is_missing_in_one_line_and_goes_on() -> None:
    absent = "cuisine-db-no-such-package"
    result = run_deps(f"# comment\nbash     the shell\n{absent}   nothing real\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"deps: missing {absent} (run 'sudo make deps' to install them); their tests will skip"]
    assert run_deps(f"bash x\n{absent} y\n", "--missing").stdout.split() == [absent]


def test_with_everything_present_deps_says_so_in_one_line() -> None:
    result = run_deps("bash  the shell\ncoreutils  ls\n")
    assert (result.returncode, result.stdout) == (0, "deps: all 2 Debian packages of scripts/deps.txt are installed\n")


GUARDED = """
import pytest

def test_runs():
    pass

def test_needs_the_pooler():
    pytest.skip("pgbouncer is not installed here (Debian's pgbouncer package)")

def test_needs_a_version():
    pytest.skip("runs on PostgreSQL 14 only")
"""


@pytest.mark.parametrize("strict", [True, False])
def test_the_guard_fails_a_run_that_skips_for_what_make_deps_installs(tmp_path: Path, strict: bool) -> None:
    (tmp_path / "test_guarded.py").write_text(GUARDED, encoding="utf-8")
    environ = {**os.environ, "PYTHONPATH": str(TESTS), "CUISINE_DB_REQUIRE_DEPS": "1" if strict else "0"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "deps_guard", "-p", "no:xdist", "-p",
                             "no:cacheprovider", "-q", "-rs", str(tmp_path)], cwd=tmp_path, env=environ,
                            capture_output=True, text=True, timeout=120, check=False)
    pgbouncer_missing = "pgbouncer" in run_deps("pgbouncer x\n", "--missing").stdout.split()
    if strict or not pgbouncer_missing:
        assert result.returncode == 1, result.stdout
        assert "skipped although make deps installs what they need" in result.stdout
        assert "test_guarded.py::test_needs_the_pooler" in result.stdout
        assert "test_needs_a_version" not in result.stdout.split("make deps installs")[1]
    else:
        assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped" in result.stdout

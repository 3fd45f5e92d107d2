"""The import contracts of pyproject.toml (`make lint` runs them with lint-imports) hold on the real tree, and fail,
naming the import, when a copy of the package gets an upward import or an import circle planted in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts on the package found first from `where` (the copy, or src/)."""
    # lint-imports puts its working folder first on sys.path; ROOT makes tests.import_contracts importable.
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(where), str(ROOT)])}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=where,
                          env=environ, capture_output=True, text=True, timeout=300, check=False)


def planted(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package with `line` added to `module` (a path under cuisine_db/)."""
    shutil.copytree(ROOT / "src" / "cuisine_db", tmp_path / "cuisine_db",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "cuisine_db" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return tmp_path


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "layers: cli -> services -> adapters -> base KEPT" in result.stdout
    assert "no import circle between any two modules KEPT" in result.stdout


@pytest.mark.parametrize(("module", "line", "named"), [
    # An adapter importing a service: the layers contract names the importer, the imported and the line.
    ("postgres/connect.py", "import cuisine_db.backup.catalog", "cuisine_db.postgres.connect -> cuisine_db.backup"),
    # The base importing an adapter.
    ("config.py", "from cuisine_db.storage import keys", "cuisine_db.config -> cuisine_db.storage"),
])
def test_a_planted_upward_import_fails_naming_it(tmp_path: Path, module: str, line: str, named: str) -> None:
    result = lint_imports(planted(tmp_path, module, line))
    assert result.returncode != 0, result.stdout
    assert "layers: cli -> services -> adapters -> base BROKEN" in result.stdout
    assert named in " ".join(result.stdout.split())


def test_a_planted_circle_between_two_services_fails_naming_it(tmp_path: Path) -> None:
    # Services may use each other, but never round in a circle (the one maintenance mode and restores had).
    result = lint_imports(planted(tmp_path, "ops/maintenance.py",
                                  "from cuisine_db.backup import physical_restore  # noqa: E402"))
    assert result.returncode != 0, result.stdout
    assert "no import circle between any two modules BROKEN" in result.stdout
    assert "cuisine_db.backup.physical_restore -> cuisine_db.ops.maintenance" in " ".join(result.stdout.split())
    assert "layers: cli -> services -> adapters -> base KEPT" in result.stdout


def test_a_planted_terminal_import_in_a_service_fails_naming_it(tmp_path: Path) -> None:
    # Services never print: only cli/ renders.
    result = lint_imports(planted(tmp_path, "backup/catalog.py", "import rich  # noqa: E402"))
    assert result.returncode != 0, result.stdout
    assert "only cli/ renders: no typer or rich below it BROKEN" in result.stdout
    assert "cuisine_db.backup.catalog -> rich" in " ".join(result.stdout.split())

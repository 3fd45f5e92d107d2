"""Files a person names (markdown=, --output): a missing folder is one line and exit 2 before any work, and an
existing file is never replaced without overwrite=1 (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import error_lines
from conftest import Project
from perf_helpers import make

from cuisine_db.cli.render import check_output, write_output
from cuisine_db.errors import UsageError


def test_a_missing_folder_is_one_line_and_exit_2(project: Project) -> None:
    target = project.root / "missing" / "dir" / "x.md"
    result = project.cli("security", "check", "--markdown", str(target))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert f"the folder {target.parent} does not exist" in line
    assert not target.parent.exists()
    through_make = make(project, "db-security-check", "env=development", f"markdown={target}")
    assert error_lines(through_make.stderr)[0].startswith("error: cannot write"), through_make.stderr


def test_an_existing_file_is_kept_unless_overwrite_is_given(project: Project) -> None:
    target = project.root / "check.md"
    target.write_text("my notes\n")
    refused = project.cli("security", "check", "--markdown", str(target))
    assert refused.returncode == 2 and "already exists" in refused.stderr and "overwrite=1" in refused.stderr
    assert target.read_text() == "my notes\n"
    refused_make = make(project, "db-security-check", "env=development", f"markdown={target}")
    assert "already exists" in refused_make.stderr and target.read_text() == "my notes\n"
    replaced = make(project, "db-security-check", "env=development", f"markdown={target}", "overwrite=1")
    assert "already exists" not in replaced.stderr, replaced.stderr
    assert target.read_text().startswith("# security check of development")


def test_the_rules_hold_for_every_writer(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        check_output(tmp_path / "nope" / "x.md", overwrite=True)
    with pytest.raises(UsageError, match="is a folder"):
        check_output(tmp_path, overwrite=True)
    link = tmp_path / "link.md"
    link.symlink_to(tmp_path / "elsewhere.md")
    with pytest.raises(UsageError, match="already exists"):
        write_output(link, "x", overwrite=False)
    assert not (tmp_path / "elsewhere.md").exists()
    fresh = tmp_path / "fresh.md"
    write_output(fresh, "one", overwrite=False)
    with pytest.raises(UsageError, match="already exists"):
        write_output(fresh, "two", overwrite=False)
    write_output(fresh, "three", overwrite=True)
    assert fresh.read_text() == "three"

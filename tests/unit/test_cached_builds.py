"""Cached PostgreSQL builds are known by their completion mark (no process per build), as `--version` says."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cache_dir

from cuisine_db.postgres import binaries


def a_cache_with(tmp_path: Path, mark: str | None, bindir: Path | None) -> Path:
    folder = tmp_path / "postgres" / "some-build"
    folder.mkdir(parents=True)
    if mark is not None:
        (folder / ".cuisine-db-complete").write_text(mark)
    if bindir is None:
        (folder / "bin").mkdir()
    else:
        (folder / "bin").symlink_to(bindir)
    return tmp_path


def real_build() -> binaries.PgBuild:
    builds = binaries.cached(cache_dir())
    if not builds:
        pytest.skip("no cached PostgreSQL build: run make install-postgres")
    return builds[0]


def test_the_mark_holds_the_version_the_programs_report(tmp_path: Path) -> None:
    real = real_build()  # read from its mark
    # A mark install() did not write is not trusted: the programs are asked, and they agree with the real mark.
    asked = binaries.cached(a_cache_with(tmp_path, "not a version\n", real.bindir))
    assert [(b.major, b.version, b.source) for b in asked] == [(real.major, real.version, "cache")]


def test_a_marked_folder_is_listed_without_running_its_programs(tmp_path: Path) -> None:
    real = real_build()
    (build,) = binaries.cached(a_cache_with(tmp_path, "99.1\n", real.bindir))
    assert (build.major, build.version) == (99, "99.1")  # only the mark could have said 99


def test_a_folder_without_programs_or_mark_is_not_a_build(tmp_path: Path) -> None:
    assert binaries.cached(a_cache_with(tmp_path / "empty", "18.6\n", None)) == []
    assert binaries.cached(a_cache_with(tmp_path / "unmarked", None, real_build().bindir)) == []

"""db-upgrade's input rules and the recorded major, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuisine_db.config import Environment, load_settings
from cuisine_db.errors import UsageError
from cuisine_db.upgrade import logical, logical_remote, validate


def local(major: int = 14) -> Environment:
    return Environment(name="production", port=55999, postgres_version=major)


@pytest.mark.parametrize(("to", "method", "reason"), [
    (13, None, "only goes forward"), (99, None, "not a major version"), (14, None, "already runs"),
    (None, None, "missing"), (18, "teleport", "not an upgrade method"), (18, "", "(empty)"),
    (17, "swap", "needs pg_upgrade 18"), (18, "logical", "not an upgrade method"),
])
def test_refused(to: int | None, method: str | None, reason: str) -> None:
    with pytest.raises(UsageError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        validate(local(), to, method)


def test_remote_and_pg_bin_are_refused() -> None:
    with pytest.raises(UsageError, match="remote server"):
        validate(Environment(name="far", dsn="host=db.invalid dbname=x"), 18, "link")
    with pytest.raises(UsageError, match="pg_bin"):
        validate(Environment(name="e", port=55998, pg_bin=Path("/usr/lib/postgresql/15/bin")), 18, "copy")


def test_accepted_defaults_to_link() -> None:
    request = validate(local(), 18, None)
    assert (request.source, request.target, request.method) == (14, 18, "link")
    assert validate(local(), 15, "copy").method == "copy"


@pytest.mark.parametrize(("content", "expected"), [("18\n", 18), ("15", 15), ("99", 14), ("x", 14), ("", 14)])
def test_recorded_major_wins_over_the_file_for_local_environments(tmp_path: Path, content: str,
                                                                  expected: int) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\nport = 55997\n[environments.far]\ndsn = "host=db.invalid"\n')
    for name in ("production", "far"):
        (tmp_path / ".cuisine" / name).mkdir(parents=True)
        (tmp_path / ".cuisine" / name / "postgres_major").write_text(content)
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    assert settings.env("production").postgres_version == expected
    assert settings.env("far").postgres_version == 14  # a remote server's version is read on connect


def test_the_three_methods_word_a_missing_or_unknown_target_alike(tmp_path: Path) -> None:
    """pg_upgrade, logical and remote logical share one wording; the hint and the choices use the source major
    only where it is known without connecting (the remote one reads it from the server later)."""
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\nport = 55997\n')
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    with pytest.raises(UsageError, match=r"to= \(--to\) is missing") as local_missing:
        logical.validate(settings, local(16), None)
    assert local_missing.value.hint == "production runs PostgreSQL 16; e.g. to=18"
    with pytest.raises(UsageError, match=r"choose one of 17, 18$"):
        logical.validate(settings, local(16), 99)
    remote = Environment(name="far", dsn="host=db.invalid dbname=x")
    with pytest.raises(UsageError, match=r"to= \(--to\) is missing") as remote_missing:
        logical_remote.validate(settings, remote, None, "host=db.invalid dbname=y")
    assert remote_missing.value.hint is None
    with pytest.raises(UsageError, match=r"choose one of 14, 15, 16, 17, 18$"):
        logical_remote.validate(settings, remote, 99, "host=db.invalid dbname=y")

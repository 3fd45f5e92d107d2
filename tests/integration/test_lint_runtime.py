"""The lint's run-time-failure verdicts, proven on real servers, and the rail that stops them on protected envs.

Each corpus file marked `-- runtime: yes` is applied after the corpus base schema (which has rows) through the real
runner: it must fail exactly when lint reports an error. A migration "fails" when the runner raises, or when it
claims success but nothing was kept (the version is not recorded: a BEGIN the file never committed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from conftest import Project, Server, make_project

from cuisine_db.errors import CuisineDbError
from cuisine_db.migrations import migrate
from cuisine_db.migrations.files import parse
from cuisine_db.migrations.lint import errors, lint

CORPUS = Path(__file__).resolve().parents[1] / "lint_corpus"
BASE = CORPUS / "20250101000000_base_schema.sql"
RUNTIME = [path for path in sorted(CORPUS.glob("*.sql")) if "-- runtime: yes" in path.read_text() and path != BASE]


def _project_with(server: Server, tmp_path: Path, *files: Path) -> Project:
    project = make_project(server, tmp_path / "project", migrations=None)
    for path in files:
        shutil.copy(path, project.root / "db" / "migrations" / path.name)
    return project


def _recorded(project: Project, version: str) -> bool:
    with project.connect() as conn:
        return conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,)).fetchone() is not None


@pytest.mark.parametrize("case", RUNTIME, ids=[path.stem.split("_", 1)[1] for path in RUNTIME])
def test_runtime_failure_matches_lint_error(server: Server, tmp_path: Path, case: Path) -> None:
    project = _project_with(server, tmp_path, BASE, case)
    predicted = bool(errors(lint(parse(case), server.major, [parse(BASE)])))
    try:
        migrate(project.settings, project.env("development"))
        raised = False
    except (CuisineDbError, psycopg.Error):
        # A psycopg error escapes the runner when the file's own BEGIN block fails (the runner's cleanup then runs
        # in an aborted transaction); it is still a failure of the migration, which is what is compared here.
        raised = True
    finally:
        with server.admin() as conn:
            conn.execute("DROP DATABASE IF EXISTS lint_corpus_probe")
    assert _recorded(project, BASE.name[:14]), "the base schema must apply cleanly"
    failed = raised or not _recorded(project, case.name[:14])
    assert failed == predicted, f"{case.name}: lint error={predicted}, failed on PostgreSQL {server.major}={failed}"


def _cli_up(project: Project, *extra: str) -> tuple[int, str]:
    result = project.cli("migrate", "up", "--env", "production", *extra)
    return result.returncode, result.stderr


def _orders(project: Project) -> int:
    with project.connect() as conn:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
    return int(row[0]) if row else -1


TRUNCATE = "-- migrate:up\n{waiver}TRUNCATE accounts CASCADE;\n-- migrate:down\n"


def test_protected_env_refuses_an_error_unless_waived_with_a_reason(server: Server, tmp_path: Path) -> None:
    project = _project_with(server, tmp_path, BASE)
    assert _cli_up(project)[0] == 0
    target = project.root / "db" / "migrations" / "20250301000000_reset_accounts.sql"
    target.write_text(TRUNCATE.format(waiver=""))
    code, stderr = _cli_up(project)
    assert code == 4 and "truncate-cascade" in stderr, stderr
    assert _orders(project) == 200 and not _recorded(project, "20250301000000")
    # A waiver without a reason is itself an error, and so is one naming no rule.
    for waiver in ("-- lint:ignore truncate-cascade\n", "-- lint:ignore truncate-all the seed refills them\n"):
        target.write_text(TRUNCATE.format(waiver=waiver))
        assert _cli_up(project)[0] == 4
        assert _orders(project) == 200
    # An unprotected environment reports the error and does not refuse.
    dry = project.cli("migrate", "up", "--env", "development", "--dry-run")
    assert dry.returncode == 0 and "truncate-cascade" in dry.stderr, dry.stderr
    target.write_text(TRUNCATE.format(waiver="-- lint:ignore truncate-cascade the seed refills both tables next\n"))
    code, stderr = _cli_up(project)
    assert code == 0, stderr
    assert _orders(project) == 0 and _recorded(project, "20250301000000")
    journal = [json.loads(line) for line in
               (project.root / ".cuisine" / "production" / "journal.jsonl").read_text().splitlines()]
    assert journal[-1]["details"]["waived"] == ["20250301000000_reset_accounts.sql: accounts: truncate-cascade"]


def test_force_applies_past_an_error_and_is_journaled(server: Server, tmp_path: Path) -> None:
    project = _project_with(server, tmp_path, BASE)
    assert _cli_up(project)[0] == 0
    (project.root / "db" / "migrations" / "20250301000000_reset_accounts.sql").write_text(TRUNCATE.format(waiver=""))
    assert _cli_up(project)[0] == 4
    code, stderr = _cli_up(project, "--force")
    assert code == 0 and "force: applying despite 1 lint error" in stderr, stderr
    assert _orders(project) == 0
    journal = [json.loads(line) for line in
               (project.root / ".cuisine" / "production" / "journal.jsonl").read_text().splitlines()]
    entries = [entry for entry in journal if entry["command"] == "migrate"]
    assert [entry["outcome"] for entry in entries][-2:] == ["refused", "ok"]
    assert entries[-1]["arguments"]["force"] is True
    assert entries[-1]["details"]["forced_past"] == ["20250301000000_reset_accounts.sql: accounts: truncate-cascade"]

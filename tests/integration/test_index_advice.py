"""Acceptance: on a seeded database with a recorded workload, the missing recipes (user_id, created_at) index is
recommended, by hypopg where installed and by rules on pg_stats everywhere; db-create-index builds it, and the
plans stop sorting a heavy user's recipes or scanning recipes sequentially."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from backup_fixtures import seeded_template
from cli_support import error_lines
from conftest import Project, Server
from perf_helpers import WORKLOAD_QUERY, clone, explain_role, has_hypopg, make, workload

from cuisine_db.diagnose.analysis import analyze
from cuisine_db.diagnose.index_advice import HYPOPG, RULES

RUNBOOK_QUERY = "SELECT * FROM recipes WHERE user_id = 123"
COMMAND = "make db-create-index env=development table=recipes columns=user_id,created_at"


@pytest.fixture(scope="module")
def template(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    return seeded_template(server, tmp_path_factory, seed=42, trimmed=False)


@pytest.fixture
def seeded(server: Server, template: str, tmp_path: Path) -> Iterator[Project]:
    yield clone(server, template, tmp_path / "project")


def recommended(project: Project, method: str) -> dict[tuple[str, tuple[str, ...]], str]:
    report = analyze(project.settings, project.env(), "recipes", method=method, min_days=0)
    return {(r.table, r.columns): r.method for r in report.recommendations} | {
        ("command", (r.table, *r.columns)): r.command for r in report.recommendations}


def test_rules_recommend_user_id_created_at(seeded: Project) -> None:
    workload(seeded)
    found = recommended(seeded, "rules")
    assert found[("recipes", ("user_id", "created_at"))] == RULES
    assert found[("command", ("recipes", "user_id", "created_at"))] == COMMAND


def test_hypopg_recommends_user_id_created_at_and_leaves_nothing(server: Server, seeded: Project) -> None:
    if not has_hypopg(server):
        pytest.skip(f"hypopg is not installed for PostgreSQL {server.major} (Debian's postgresql-{server.major}-hypopg)"
                    "; the rules are tested on this server instead")
    with seeded.connect() as conn:
        # The costliest statement filters on a type without a B-tree operator class: hypopg cannot build its
        # candidate, and the statements after it must be advised as if it had never been tried.
        conn.execute("CREATE TABLE shapes AS SELECT g AS id, box(point(g, g), point(g + 1, g + 1)) AS b "
                     "FROM generate_series(1, 3000) g; ANALYZE shapes")
        for _ in range(3):
            conn.execute("SELECT * FROM shapes WHERE b = %s AND (SELECT pg_sleep(0.1)) IS NOT NULL",
                         ("((1,1),(2,2))",)).fetchall()
    workload(seeded)
    report = analyze(seeded.settings, seeded.env(), method="hypopg", min_days=0)
    assert report.advice_method == HYPOPG
    [item] = [r for r in report.recommendations if r.table == "recipes"]
    assert item.columns == ("user_id", "created_at") and item.method == HYPOPG and item.command == COMMAND
    assert "% less" in item.statements[0].detail and item.benefit_ms > 0
    with seeded.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").fetchone() == (0,)


def explain_json(project: Project, query: str) -> dict[str, object]:
    result = project.cli("explain", query, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def node_types(plan: object) -> list[str]:
    text = json.dumps(plan)
    return [part.split('"')[0] for part in text.split('"Node Type": "')[1:]]


def test_the_recommended_command_builds_the_index_and_the_plans_change(seeded: Project) -> None:
    explain_role(seeded)
    users = workload(seeded)
    heavy = WORKLOAD_QUERY.replace("%s", str(users[0]))
    before = explain_json(seeded, heavy)
    assert "Sort" in node_types(before["plan"])  # every call sorts all of the heavy user's recipes
    [command] = [c for key, c in recommended(seeded, "rules").items() if key[0] == "command"]
    built = make(seeded, *command.split()[1:])
    assert built.returncode == 0, built.stderr
    assert "created recipes_user_id_created_at_idx" in built.stderr
    with seeded.connect() as conn:
        row = conn.execute("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = "
                           "'recipes_user_id_created_at_idx'::regclass").fetchone()
        assert row == (True,)
    after = explain_json(seeded, heavy)
    assert "Sort" not in node_types(after["plan"])
    assert "recipes_user_id_created_at_idx" in json.dumps(after["plan"])
    explained = make(seeded, "db-explain", f"query={RUNBOOK_QUERY}")
    assert explained.returncode == 0, explained.stderr
    assert "on recipes" in explained.stdout and "Seq Scan on recipes" not in explained.stdout
    # The recommendation is met, and the old single-column index is now reported as overlapping.
    report = analyze(seeded.settings, seeded.env(), "recipes", method="rules", min_days=0)
    assert not [r for r in report.recommendations if r.columns == ("user_id", "created_at")]
    assert [f.subject for f in report.findings if f.check == "overlapping-index"] == ["recipes_user_id_idx"]
    again = make(seeded, *command.split()[1:])
    assert again.returncode == 0 and "nothing done" in "".join(error_lines(again.stderr))

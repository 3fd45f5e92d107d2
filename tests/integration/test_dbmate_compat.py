"""The real dbmate (npm package `dbmate`) and cuisine-db on one database, in both orders: they agree on what is
applied and on what rollback undoes next, and each edge file gives the same result with both tools."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, Project, Server, make_project

from cuisine_db.migrations import schema_dump


@pytest.fixture(scope="session")
def dbmate() -> Path:
    """The dbmate program, installed into the cache by scripts/dbmate.sh (as `make deps` does) when missing."""
    found = subprocess.run(["bash", str(REPO / "scripts" / "dbmate.sh")], capture_output=True, text=True,
                           timeout=600, check=False)
    assert found.returncode == 0, found.stderr
    if not found.stdout.strip():
        # The script's one line names what is missing: node (Debian's nodejs) or npm.
        pytest.skip(found.stderr.strip())
    return Path(found.stdout.strip())


@dataclass
class Peer:
    """dbmate pointed at one project's database and migrations folder."""

    program: Path
    project: Project

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        server = self.project.server
        environ = {**os.environ, "PGPASSFILE": str(server.passfile),
                   "DATABASE_URL": f"postgres://cuisine@127.0.0.1:{server.port}/{self.project.database}"
                                   "?sslmode=disable"}
        return subprocess.run([str(self.program), "--no-dump-schema", "--migrations-dir",
                               str(self.project.root / "db" / "migrations"), *args],
                              env=environ, capture_output=True, text=True, timeout=120, check=False)

    def applied(self) -> list[str]:
        """The files dbmate's own status marks applied."""
        result = self.run("status")
        assert result.returncode == 0, result.stderr
        return re.findall(r"^\[X\] (\S+)$", result.stdout, re.M)


def write(project: Project, file_name: str, text: str) -> None:
    (project.root / "db" / "migrations" / file_name).write_text(text)


def table(name: str) -> str:
    return f"-- migrate:up\nCREATE TABLE {name} (id int);\n-- migrate:down\nDROP TABLE {name};\n"


def ours(project: Project) -> dict[str, str]:
    """cuisine-db's status: file version -> state."""
    result = project.cli("migrate", "status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["version"]: row["state"] for row in json.loads(result.stdout)}


def rolled_back_by_us(project: Project) -> str:
    result = project.cli("migrate", "rollback", "--steps", "1", "--json")
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert len(steps) == 1
    return str(steps[0]["version"])


def rolled_back_by_dbmate(peer: Peer) -> str:
    result = peer.run("rollback")
    assert result.returncode == 0, result.stderr
    found = re.search(r"^Rolling back: (\d+)", result.stdout, re.M)
    assert found, result.stdout
    return found.group(1)


def test_applied_by_dbmate_then_status_and_rollback_by_cuisine_db(empty_project: Project, dbmate: Path) -> None:
    project, peer = empty_project, Peer(dbmate, empty_project)
    for version, name in (("20250101000000", "a"), ("20250102000000", "b"), ("20250103000000", "c")):
        write(project, f"{version}_{name}.sql", table(name))
    assert peer.run("migrate").returncode == 0
    # Read-only status on the table dbmate created (only `version`): no traceback, and the table is not altered.
    assert ours(project) == dict.fromkeys(("20250101000000", "20250102000000", "20250103000000"), "applied")
    with project.connect() as conn:
        columns = [row[0] for row in conn.execute("SELECT column_name FROM information_schema.columns"
                                                  " WHERE table_name = 'schema_migrations'")]
    assert columns == ["version"]
    assert rolled_back_by_us(project) == "20250103000000"
    assert peer.applied() == ["20250101000000_a.sql", "20250102000000_b.sql"]
    assert rolled_back_by_dbmate(peer) == "20250102000000"
    assert ours(project) == {"20250101000000": "applied", "20250102000000": "pending", "20250103000000": "pending"}
    assert peer.run("migrate").returncode == 0
    with project.connect() as conn:
        # Rows dbmate writes after cuisine-db's first write carry their applied time (the column's default).
        stamped = conn.execute("SELECT version FROM schema_migrations WHERE applied_at IS NOT NULL ORDER BY 1")
        assert [row[0] for row in stamped] == ["20250102000000", "20250103000000"]
    assert rolled_back_by_us(project) == "20250103000000"
    assert project.tables() == ["a", "b", "schema_migrations"]


def test_applied_by_cuisine_db_then_status_and_rollback_by_dbmate(empty_project: Project, dbmate: Path) -> None:
    project, peer = empty_project, Peer(dbmate, empty_project)
    for version, name in (("20250101000000", "a"), ("20250102000000", "b"), ("20250103000000", "c")):
        write(project, f"{version}_{name}.sql", table(name))
    assert project.cli("migrate", "up").returncode == 0
    assert peer.applied() == ["20250101000000_a.sql", "20250102000000_b.sql", "20250103000000_c.sql"]
    plan = project.cli("migrate", "rollback", "--steps", "1", "--dry-run", "--json")
    assert json.loads(plan.stdout)["steps"][0]["version"] == "20250103000000"
    assert rolled_back_by_dbmate(peer) == "20250103000000"
    assert ours(project)["20250103000000"] == "pending"
    assert rolled_back_by_us(project) == "20250102000000"
    assert peer.run("migrate").returncode == 0
    assert ours(project) == dict.fromkeys(("20250101000000", "20250102000000", "20250103000000"), "applied")
    assert project.tables() == ["a", "b", "c", "schema_migrations"]


def test_both_tools_roll_back_the_highest_version_after_a_late_merge(empty_project: Project, dbmate: Path) -> None:
    project, peer = empty_project, Peer(dbmate, empty_project)
    write(project, "20250102000000_b.sql", table("b"))
    assert project.cli("migrate", "up").returncode == 0
    write(project, "20250101000000_a.sql", table("a"))  # older version, applied later, by the other tool
    assert peer.run("migrate").returncode == 0
    plan = project.cli("migrate", "rollback", "--steps", "1", "--dry-run", "--json")
    assert json.loads(plan.stdout)["steps"][0]["version"] == "20250102000000"
    assert rolled_back_by_dbmate(peer) == "20250102000000"
    assert rolled_back_by_us(project) == "20250101000000"
    assert project.tables() == ["schema_migrations"]


@dataclass(frozen=True)
class Edge:
    """A migrations folder, and what both tools must make of it."""

    name: str
    files: dict[str, str]
    applied: list[str]  # versions applied after `migrate` with either tool
    ours: str | None  # a part of cuisine-db's refusal (None: it succeeds)
    theirs: str | None  # a part of dbmate's error (None: it succeeds)
    # dbmate applies the files before a broken one and then stops; cuisine-db refuses before applying anything.
    theirs_applied: list[str] | None = None


EDGES = [
    Edge("sql before up", {"001_init.sql": "CREATE TABLE before_up (id int);\n" + table("a")}, [],
         "SQL before '-- migrate:up'", "statements preceding"),
    Edge("comments before up", {"001_init.sql": "-- a comment\n\n  -- another\n" + table("a")}, ["001"], None, None),
    Edge("no down section", {"001_a.sql": table("a"), "002_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n"},
         [], "no '-- migrate:down' section", "define a down block", theirs_applied=["001"]),
    Edge("unknown options ignored", {"001_a.sql": table("a").replace("migrate:up", "migrate:up foo:bar x y:z:w")},
         ["001"], None, None),
    # Only the exact value `false` leaves the transaction: FALSE still runs in one, where CONCURRENTLY fails.
    Edge("transaction:FALSE", {"001_a.sql": table("a"), "002_i.sql":
         "-- migrate:up transaction:FALSE\nCREATE INDEX CONCURRENTLY i ON a (id);\n-- migrate:down\nDROP INDEX i;\n"},
         ["001"], "cannot run inside a transaction block", "cannot run inside a transaction block"),
    Edge("transaction:false", {"001_a.sql": table("a"), "002_i.sql":
         "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a (id);\n-- migrate:down\nDROP INDEX i;\n"},
         ["001", "002"], None, None),
    Edge("names dbmate accepts", {"001_init.sql": table("a"), "2.sql": table("b"), "10-c.sql": table("c"),
                                  "notes.sql": "not a migration", "README.md": "text"},
         ["001", "10", "2"], None, None),
    Edge("a marker that is a comment", {"001_a.sql": "-- migrate:upper\n" + table("a")}, ["001"], None, None),
]


@pytest.mark.postgres(max=14, reason="how each tool reads a migration file does not depend on the server's version; "
                                     "the round trips above run on every version")
@pytest.mark.parametrize("edge", EDGES, ids=[edge.name for edge in EDGES])
def test_each_edge_file_gives_the_same_result_with_both_tools(server: Server, tmp_path: Path, dbmate: Path,
                                                                edge: Edge) -> None:
    results = {}
    for tool in ("cuisine-db", "dbmate"):
        project = make_project(server, tmp_path / tool, migrations=None)
        for file_name, text in edge.files.items():
            write(project, file_name, text)
        if tool == "dbmate":
            outcome = Peer(dbmate, project).run("migrate")
            expected = edge.theirs
        else:
            outcome = project.cli("migrate", "up")
            expected = edge.ours
        if expected is None:
            assert outcome.returncode == 0, (tool, outcome.stdout, outcome.stderr)
        else:
            assert outcome.returncode != 0 and expected in outcome.stderr, (tool, outcome.stderr)
        with project.connect() as conn:
            present = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")] \
                if present and present[0] else []
        results[tool] = (versions, project.tables())
        # Whatever the other tool did, dbmate's status and ours list the same applied files.
        assert sorted(Peer(dbmate, project).applied()) == sorted(
            name for name in edge.files if re.match(r"\d+", name) and name.endswith(".sql")
            and re.match(r"\d+", name).group(0) in versions)  # type: ignore[union-attr]
        assert sorted(v for v, state in ours(project).items() if state == "applied") == sorted(versions)
    assert results["cuisine-db"][0] == sorted(edge.applied)
    assert results["dbmate"][0] == sorted(edge.applied if edge.theirs_applied is None else edge.theirs_applied)
    assert "before_up" not in results["cuisine-db"][1] + results["dbmate"][1]
    if edge.theirs_applied is None:
        assert results["cuisine-db"][1] == results["dbmate"][1]


def test_a_missing_down_section_stops_rollback_in_both_tools(empty_project: Project, dbmate: Path) -> None:
    project, peer = empty_project, Peer(dbmate, empty_project)
    write(project, "001_a.sql", table("a"))
    assert peer.run("migrate").returncode == 0
    write(project, "001_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n")  # dbmate's row has no checksum
    theirs = peer.run("rollback")
    assert theirs.returncode != 0 and "define a down block" in theirs.stderr
    result = project.cli("migrate", "rollback", "--steps", "1")
    assert result.returncode == 2 and "001_a.sql: no '-- migrate:down' section" in result.stderr
    assert project.tables() == ["a", "schema_migrations"] and ours(project) == {"001": "applied"}


def test_dbmate_loads_our_schema_file_and_agrees_on_what_is_applied(project: Project, dbmate: Path) -> None:
    assert project.cli("migrate", "up").returncode == 0
    schema_file = project.root / "db" / "schema.sql"
    text = schema_file.read_text()
    assert "INSERT INTO public.schema_migrations (version) VALUES\n    ('20250101090000')," in text
    # Deterministic: writing it again gives the same bytes.
    schema_dump.write(project.settings, project.env())
    assert schema_file.read_text() == text
    fresh = make_project(project.server, project.root.parent / "fresh")
    loaded = Peer(dbmate, fresh).run("--schema-file", str(schema_file), "load")
    assert loaded.returncode == 0, loaded.stderr
    assert Peer(dbmate, fresh).applied() == sorted(path.name for path in (fresh.root / "db" / "migrations").iterdir())
    assert set(ours(fresh).values()) == {"applied"}
    assert fresh.tables() == project.tables()

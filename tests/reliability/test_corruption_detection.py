"""The corruption acceptance: random damage done to a stopped cluster's files is found and blamed on the right
relation; a clean cluster gives no finding.

One dedicated cluster (not the shared `server`) holds a small database with TOASTed values, B-tree and GIN
indexes. It is stopped once, and its data directory copied twice: as it is (data checksums on, as the tool
creates every cluster) and with checksums turned off by pg_checksums. Each trial restores one copy, damages
one page of one relation, starts the server and runs `cuisine-db integrity corruption --json` (the command
behind make db-check-corruption). With checksums on, any changed byte makes the page fail verification when
read; with them off, only structural damage can be found, so the trial breaks a tuple header, an index
tuple's heap pointer and key, or a TOAST chunk's sequence number, which amcheck must notice by itself.

Set CUISINE_TEST_SEED to replay a run; the seed is in every assertion message.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import struct
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_support import run_cli
from conftest import available, cache_dir

from cuisine_db.config import load_settings
from cuisine_db.ops.integrity import check_corruption, verify_integrity
from cuisine_db.postgres import binaries
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port
from cuisine_db.postgres.runner import ToolError, run

PAGE = 8192
SCHEMA = """
CREATE TABLE notes (id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL, tags text[] NOT NULL);
CREATE INDEX notes_title_idx ON notes (title);
CREATE INDEX notes_tags_idx ON notes USING gin (tags);
CREATE TABLE steps (id bigint PRIMARY KEY, note_id bigint NOT NULL REFERENCES notes, position int NOT NULL,
                    instruction text NOT NULL);
CREATE INDEX steps_note_id_idx ON steps (note_id);
-- Every tenth body is long and hard to compress, so it lives in TOAST chunks.
INSERT INTO notes
SELECT n, 'note ' || n,
       CASE WHEN n % 10 = 0 THEN (SELECT string_agg(md5(n::text || '-' || i), '') FROM generate_series(1, 120) i)
            ELSE 'short body ' || n END,
       ARRAY['t' || n % 7, 'u' || n % 11]
FROM generate_series(1, 2000) AS n;
INSERT INTO steps SELECT n, 1 + n % 2000, n / 2000, 'step ' || n FROM generate_series(1, 8000) AS n;
"""
SEED = int(os.environ.get("CUISINE_TEST_SEED") or random.SystemRandom().randrange(1_000_000))


@dataclass(frozen=True)
class Target:
    relation: str  # as the report names it
    blamed: str  # the relation the report must blame
    path: Path
    kind: str  # heap, btree, toast, gin, fsm


@dataclass
class Lab:
    """The dedicated cluster, its two clean copies, and a config file pointing the CLI at it."""

    major: int
    config: Path
    datadir: Path
    clean: dict[bool, Path]  # checksums on/off -> copy of the stopped data directory
    targets: dict[str, list[Target]]
    os_user: str | None
    checksums: bool | None = None  # the setting of the data directory in place, None: unknown
    pristine: bool = False  # the data directory in place holds the clean copy's data (damage undone)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args)

    def check(self, what: str = "", through_cli: bool = False) -> tuple[int, dict[str, Any]]:
        """db-check-corruption's report: through the CLI (--json), or in this process (the CLI starts slowly)."""
        if through_cli:
            result = self.cli("integrity", "corruption", "--env", "lab", "--json")
            assert result.returncode in (0, 1) and result.stdout.startswith("{"), \
                f"seed {SEED}, {what}: {result.stderr}"
            return result.returncode, json.loads(result.stdout)
        settings = _settings(self.config)
        report = check_corruption(settings, settings.env("lab"))
        return (1 if report.findings else 0), asdict(report)

    def verify(self, through_cli: bool = False) -> tuple[int, dict[str, Any]]:
        if through_cli:
            result = self.cli("integrity", "verify", "--env", "lab", "--json")
            assert result.returncode in (0, 1) and result.stdout.startswith("{"), f"seed {SEED}: {result.stderr}"
            return result.returncode, json.loads(result.stdout)
        settings = _settings(self.config)
        report = verify_integrity(settings, settings.env("lab"))
        return (1 if report.findings else 0), asdict(report)


def _settings(config: Path) -> Any:
    return load_settings({"CUISINE_DB_CONFIG": str(config)})


def _stop(lab: Lab) -> None:
    """A clean stop; a server that does not stop within pg_ctl's timeout (seen once on 18, on a damaged cluster,
    in a CI run) is stopped immediately, and the next trial starts from a clean copy (WAL replay could bring the
    damage back over an undone page). The server log's tail is kept as a warning, to find out why."""
    settings = _settings(lab.config)
    cluster = cluster_for(settings, settings.env("lab"))
    try:
        cluster.stop()
    except ToolError as exc:
        logs = sorted((lab.datadir / "log").glob("*"), key=lambda path: path.stat().st_mtime)
        tail = logs[-1].read_text(errors="replace").splitlines()[-15:] if logs else []
        warnings.warn(f"lab server did not stop ({exc.message}); log tail: {tail}", stacklevel=2)
        cluster.stop("immediate")
        lab.pristine = False


def _start(lab: Lab) -> None:
    settings = _settings(lab.config)
    cluster_for(settings, settings.env("lab")).start()


def _restore(lab: Lab, checksums: bool) -> None:
    """Put a clean copy back (cp -a keeps the server user's ownership and modes), unless the data directory
    in place already holds it: undoing one page is much cheaper than copying the cluster."""
    _stop(lab)
    if lab.pristine and lab.checksums == checksums:
        return
    shutil.rmtree(lab.datadir)
    subprocess.run(["cp", "-a", str(lab.clean[checksums]), str(lab.datadir)], check=True)
    lab.checksums, lab.pristine = checksums, True


def _targets(conn: psycopg.Connection[Any], datadir: Path) -> dict[str, list[Target]]:
    def path(relation: str, fork: str = "") -> Path:
        row = conn.execute("SELECT pg_relation_filepath(%s::regclass)", [relation]).fetchone()
        assert row is not None
        return datadir / f"{row[0]}{fork}"

    toast = conn.execute("SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'notes'::regclass"
                         ).fetchone()
    assert toast is not None
    return {
        "heap": [Target(t, t, path(t), "heap") for t in ("public.notes", "public.steps")],
        "btree": [Target(i, i, path(i), "btree") for i in
                  ("public.notes_pkey", "public.notes_title_idx", "public.steps_pkey", "public.steps_note_id_idx")],
        "toast": [Target(toast[0], "public.notes", path(toast[0]), "toast")],
        "gin": [Target("public.notes_tags_idx", "public.notes_tags_idx", path("public.notes_tags_idx"), "gin")],
        "fsm": [Target(t, t, path(t, "_fsm"), "fsm") for t in ("public.notes", "public.steps")],
    }


@pytest.fixture(scope="module", params=[14, 18], ids=["pg14", "pg18"])
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    major: int = request.param
    if available(major) is None:
        binaries.install(major, cache_dir())
    with tempfile.TemporaryDirectory(prefix="cuisine-db-corruption-") as folder:
        root = Path(folder)
        config = root / "cuisine-db.toml"
        config.write_text(f'state_dir = "state"\n[environments.lab]\nport = {free_port()}\n'
                          f"postgres_version = {major}\n[environments.lab.server_settings]\nfsync = false\n"
                          "autovacuum = false\n")
        settings = _settings(config)
        env = settings.env("lab")
        cluster = ensure_up(settings, env)
        try:
            with psycopg.connect(host="127.0.0.1", port=cluster.port, user="cuisine", dbname=env.database,
                                 passfile=str(cluster.passfile), autocommit=True) as conn:
                conn.execute(SCHEMA)
                # Frozen and checkpointed: later reads set no hint bits, so the copies stay byte-identical.
                conn.execute("VACUUM (FREEZE, ANALYZE)")
                conn.execute("CREATE EXTENSION amcheck WITH SCHEMA pg_catalog")
                conn.execute("CREATE EXTENSION pg_prewarm WITH SCHEMA pg_catalog")
                conn.execute("CHECKPOINT")
                targets = _targets(conn, cluster.datadir)
            cluster.stop()
            clean_on = root / "clean-checksums-on"
            clean_off = root / "clean-checksums-off"
            subprocess.run(["cp", "-a", str(cluster.datadir), str(clean_on)], check=True)
            run([cluster.build.program("pg_checksums"), "--disable", "--pgdata", cluster.datadir], user=cluster.os_user)
            subprocess.run(["cp", "-a", str(cluster.datadir), str(clean_off)], check=True)
            yield Lab(major, config, cluster.datadir, {True: clean_on, False: clean_off}, targets, cluster.os_user)
        finally:
            cluster.destroy()


# --- damage done to one page ----------------------------------------------------------------------

def _pointers(page: bytearray) -> list[tuple[int, int, int]]:
    """(offset, length, flags) of each line pointer on a heap or index page."""
    lower = struct.unpack_from("<H", page, 12)[0]
    found = []
    for position in range(24, lower, 4):
        word = struct.unpack_from("<I", page, position)[0]
        found.append((word & 0x7FFF, word >> 17, (word >> 15) & 3))
    return found


def _live(page: bytearray) -> list[tuple[int, int]]:
    return [(offset, length) for offset, length, flags in _pointers(page) if flags == 1 and length]


def _blocks(path: Path) -> int:
    return path.stat().st_size // PAGE


def _any_bytes(rng: random.Random, page: bytearray) -> str:
    """Checksums on: overwrite a few bytes anywhere; the page then fails verification whatever they were."""
    start = rng.randrange(PAGE - 16)
    count = rng.randint(1, 16)
    for position in range(start, start + count):
        page[position] = (page[position] + rng.randint(1, 255)) % 256
    return f"{count} byte(s) at offset {start}"


def _tuple_header(rng: random.Random, page: bytearray) -> str | None:
    """Checksums off: random bytes over one tuple's header, with t_hoff surely wrong."""
    live = _live(page)
    if not live:
        return None
    offset, _ = rng.choice(live)
    hoff = page[offset + 22]
    page[offset:offset + 22] = bytes(rng.randrange(256) for _ in range(22))
    page[offset + 22] = rng.choice([value for value in range(256) if value != hoff])
    return f"tuple header at offset {offset}"


def _index_tuple(rng: random.Random, page: bytearray) -> str | None:
    """Checksums off: one leaf tuple's heap pointer and first key bytes replaced; amcheck's heapallindexed pass
    no longer finds the heap row in the index."""
    special = struct.unpack_from("<H", page, 16)[0]
    flags = struct.unpack_from("<H", page, special + 12)[0]
    following = struct.unpack_from("<I", page, special + 4)[0]
    if not flags & 1 or flags & 8:  # not a leaf, or the metapage
        return None
    items = _pointers(page)[0 if following == 0 else 1:]  # the high key comes first on all but the rightmost
    data = [(offset, length) for offset, length, kind in items if kind == 1 and length > 8]
    if not data:
        return None
    offset, length = rng.choice(data)
    for position in [*range(offset, offset + 6), *range(offset + 8, min(offset + 16, offset + length))]:
        page[position] = (page[position] + rng.randint(1, 255)) % 256
    return f"index tuple at offset {offset}"


def _toast_chunk(rng: random.Random, page: bytearray) -> str | None:
    """Checksums off: one TOAST chunk claims another sequence number."""
    live = _live(page)
    if not live:
        return None
    offset, _ = rng.choice(live)
    data = offset + page[offset + 22]
    sequence = struct.unpack_from("<i", page, data + 4)[0]
    struct.pack_into("<i", page, data + 4, sequence + rng.randint(1, 1000))
    return f"TOAST chunk at offset {offset} (sequence {sequence})"


@dataclass(frozen=True)
class Damage:
    description: str
    path: Path
    block: int
    original: bytes

    def undo(self) -> None:
        """Write the page as it was (the server is stopped); anything the server wrote there goes too."""
        with self.path.open("r+b") as handle:
            handle.seek(self.block * PAGE)
            handle.write(self.original)


def damage(lab: Lab, rng: random.Random, target: Target, checksums: bool) -> Damage:
    """Damage one random page of the target's file in the stopped cluster; say what was done."""
    blocks = list(range(_blocks(target.path)))
    rng.shuffle(blocks)
    for block in blocks:
        with target.path.open("r+b") as handle:
            handle.seek(block * PAGE)
            original = handle.read(PAGE)
            page = bytearray(original)
            if checksums:
                what: str | None = _any_bytes(rng, page)
            elif target.kind == "heap":
                what = _tuple_header(rng, page)
            elif target.kind == "btree":
                what = _index_tuple(rng, page)
            else:
                what = _toast_chunk(rng, page)
            if what is None:
                continue
            handle.seek(block * PAGE)
            handle.write(page)
        description = f"{target.relation} block {block}: {what} (checksums {'on' if checksums else 'off'})"
        return Damage(description, target.path, block, original)
    raise AssertionError(f"seed {SEED}: no page of {target.relation} could be damaged that way")


# --- the trials -----------------------------------------------------------------------------------

def _plan(rng: random.Random, trials: int) -> list[tuple[str, bool]]:
    """Every kind, both checksum settings where damage can be seen without checksums, in random order within
    each setting (grouped, so that the data directory is copied once per setting, not once per trial)."""
    base = [("heap", True), ("heap", False), ("btree", True), ("btree", False), ("toast", True), ("toast", False),
            ("gin", True), ("fsm", True)]
    plan = base + [rng.choice(base[:6]) for _ in range(max(0, trials - len(base)))]
    rng.shuffle(plan)
    return sorted(plan, key=lambda trial: not trial[1])


def _blamed(report: dict[str, Any]) -> set[str]:
    return {item["relation"] for item in report["damaged"]}


def test_a_clean_cluster_gives_no_finding(lab: Lab) -> None:
    _restore(lab, checksums=True)
    _start(lab)
    code, report = lab.check(through_cli=True)
    assert code == 0 and report["findings"] == [] and report["damaged"] == [], report
    code, verified = lab.verify()
    assert code == 0 and verified["findings"] == [], verified
    # Without checksums nothing is damaged either; the only finding is that checksums are off.
    _restore(lab, checksums=False)
    _start(lab)
    code, report = lab.check()
    assert code == 0 and report["damaged"] == [], report
    code, verified = lab.verify()
    assert [finding["check"] for finding in verified["findings"]] == ["data checksums"], verified


def test_random_corruptions_are_found_and_blamed_on_the_right_relation(lab: Lab) -> None:
    rng = random.Random(SEED + lab.major)
    trials = 12 if lab.major == 14 else 8
    repaired: set[str] = set()
    for number, (kind, checksums) in enumerate(_plan(rng, trials)):
        target = rng.choice(lab.targets[kind])
        _restore(lab, checksums)
        done = damage(lab, rng, target, checksums)
        _start(lab)
        code, report = lab.check(what=done.description, through_cli=number == 0)
        context = (f"seed {SEED}, PostgreSQL {lab.major}, trial {number}: {done.description}\n"
                   f"{json.dumps(report, indent=1, default=str)}")
        assert code == 1, context
        assert _blamed(report) == {target.blamed}, context
        (found,) = report["damaged"]
        if target.kind in ("heap", "toast"):
            assert found["kind"] == "table" and found["repair"] == \
                f"make db-restore-tables env=lab backup=latest tables={target.blamed.removeprefix('public.')}", context
        elif target.kind == "fsm":
            assert found["kind"] == "free space or visibility map", context
        else:
            assert found["kind"] == "index" and "REINDEX INDEX CONCURRENTLY" in found["repair"], context
        if number % 3 == 0 and target.kind in ("heap", "btree", "toast"):
            # The command's own engine (amcheck on several connections) blames the same relation.
            code, verified = lab.verify()
            assert code == 1 and _blamed(verified) == {target.blamed}, f"{context}\n{verified}"
        if target.kind not in ("btree", "gin", "fsm") or target.kind in repaired:
            _stop(lab)
            done.undo()
        else:
            # Index and map damage is repaired in place by the command the report prints (once per kind: a repair
            # rewrites relations, so the next trial needs a fresh copy of the cluster).
            repaired.add(target.kind)
            lab.pristine = False
            argv = shlex.split(found["repair"])
            assert argv[0] == "cuisine-db", context
            result = lab.cli(*argv[1:])
            assert result.returncode == 0, f"{context}\n{result.stderr}"
            # A restart empties shared buffers: the check reads the files again, so the repair must be on disk.
            _stop(lab)
            _start(lab)
            code, after = lab.check()
            assert code == 0 and after["damaged"] == [], f"{context}\nafter the repair: {after}"
            if checksums:
                # The clean full check above examined the checksum failures the damage caused: verify-integrity
                # stops reporting them.
                code, verified = lab.verify()
                assert code == 0, f"{context}\nverify after the repair: {verified}"

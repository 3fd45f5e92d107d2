"""The demo's step runner (scripts/tour.sh): one line per step, output folded into a log, a summary by part, and on a
failure the failing step's last lines, then the clean-up of what the tour started, and its exit code."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

TOUR = """
set -euo pipefail
source {tour}
tour_start {log}
part "Set-up"
made() {{ echo "noise that stays in the log"; echo "made it"; kept=yes; }}
step "make db-one (a note for the log)" made
echo "kept=$kept"
step -x 1 -r "finding" "make db-check" bash -c 'echo "1 finding"; echo "table line"; exit 1'
sleep 300 &
sleeper=$!
echo "$sleeper" > {folder}/sleeper.pid
on_cleanup "sleeper" kill "$sleeper"
on_cleanup "finished thing" touch {folder}/must-not-exist
cleanup_done "finished thing"
part "Work"
breaks() {{ echo "starting"; echo "the reason it broke"; {failing}; echo "never printed"; }}
step "make db-breaks" breaks
step "make db-never" touch {folder}/never-ran
TOUR_DONE="all done"
"""


def run_tour(folder: Path, failing: str = "false", verbose: bool = False) -> subprocess.CompletedProcess[str]:
    script = folder / "tour-test.sh"
    script.write_text(TOUR.format(tour=REPO / "scripts" / "tour.sh", log=folder / "tour.log", folder=folder,
                                  failing=failing), encoding="utf-8")
    environ = {**os.environ, "VERBOSE": "1" if verbose else "0", "COLUMNS": "100"}
    return subprocess.run(["bash", str(script)], cwd=folder, env=environ, capture_output=True, text=True,
                          timeout=60, check=False)


def alive(pid: int, grace: float = 5.0) -> bool:
    """Whether pid still runs once the clean-up's signal had `grace` seconds to land (a zombie is not running)."""
    deadline = time.monotonic() + grace
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in ("Z", "X"):
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def test_a_failing_step_stops_the_tour_shows_why_and_cleans_up(tmp_path: Path) -> None:
    result = run_tour(tmp_path, failing="(exit 3)")
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"  ✓ +\d+\.\ds  make db-one · made it", lines[1]), lines
    assert "kept=yes" in lines  # a step runs in the tour's shell: what it sets stays set
    assert re.fullmatch(r"  ✓ +\d+\.\ds  make db-check · exit 1, as expected: 1 finding", lines[3]), lines
    failed = next(line for line in lines if "✗" in line)
    assert re.fullmatch(r"  ✗ +\d+\.\ds  make db-breaks · failed \(exit 3\)", failed)
    assert "      | the reason it broke" in lines and "never printed" not in result.stdout
    assert not (tmp_path / "never-ran").exists()
    # The clean-up ran what was still registered (the background process is gone), and nothing already done.
    assert not alive(int((tmp_path / "sleeper.pid").read_text()))
    assert not (tmp_path / "must-not-exist").exists()
    assert "  cleaned up: sleeper" in lines
    summary = lines[lines.index(next(line for line in lines if line.startswith("part "))):]
    assert re.match(r"Set-up +2 +\d+\.\ds  ok$", summary[1]), summary
    assert re.match(r"Work +0 +\d+\.\ds  failed: make db-breaks$", summary[2]), summary
    assert re.match(r"the whole tour +2 +\d+\.\ds  failed \(exit 3\)$", summary[3]), summary
    assert "all done" not in result.stdout
    log = (tmp_path / "tour.log").read_text(encoding="utf-8")
    assert "noise that stays in the log" not in result.stdout
    for text in ("== make db-one (a note for the log)", "noise that stays in the log", "table line", "starting",
                 "== clean-up: sleeper"):
        assert log.count(text) == 1, text


def test_a_tour_that_succeeds_prints_one_line_per_step_and_verbose_shows_the_output(tmp_path: Path) -> None:
    quiet = run_tour(tmp_path, failing="true")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert [line for line in quiet.stdout.splitlines() if line.startswith("  ✓")] != []
    assert len([line for line in quiet.stdout.splitlines() if "✓" in line]) == 4
    assert "noise that stays in the log" not in quiet.stdout
    assert re.search(r"the whole tour +4 +\d+\.\ds  ok\n", quiet.stdout)
    assert quiet.stdout.rstrip().endswith("all done")
    # On success the registered clean-up still runs for what no step undid: the background sleeper.
    assert not alive(int((tmp_path / "sleeper.pid").read_text()))
    verbose = run_tour(tmp_path, failing="true", verbose=True)
    assert verbose.returncode == 0
    assert "noise that stays in the log" in verbose.stdout and "== make db-one (a note for the log)" in verbose.stdout


def test_every_line_fits_the_terminal(tmp_path: Path) -> None:
    result = run_tour(tmp_path, failing="true")
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("Each step's output: ")  # the log's path: as long as the folder's
    assert max(len(line) for line in lines[:-1]) <= 100


@pytest.mark.parametrize("script", sorted((REPO / "scripts").rglob("*.sh")), ids=lambda p: p.name)
def test_the_demo_scripts_parse(script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False).returncode == 0


def test_the_tour_keeps_every_step_and_each_part_opens_with_a_heading() -> None:
    parts = [REPO / "scripts" / "demo.sh", *sorted((REPO / "scripts" / "demo.d").glob("*.sh"))]
    steps = sum(len(re.findall(r"^\s*step\b", path.read_text(encoding="utf-8"), re.M)) for path in parts)
    assert steps >= 72  # the tour's steps before it was folded into one line each
    for path in parts[1:]:
        assert re.search(r"^part \"", path.read_text(encoding="utf-8"), re.M), path.name


INTERRUPTED = """
set -euo pipefail
source {tour}
tour_start {log}
part "Long"
sleep 300 &
echo "$!" > {folder}/sleeper.pid
on_cleanup "sleeper" kill "$!"
step "make db-slow" bash -c 'touch {folder}/started; sleep 2'
step "make db-never" touch {folder}/never-ran
"""


def test_an_interrupted_tour_cleans_up_and_says_it_was_interrupted(tmp_path: Path) -> None:
    script = tmp_path / "interrupted.sh"
    script.write_text(INTERRUPTED.format(tour=REPO / "scripts" / "tour.sh", log=tmp_path / "tour.log",
                                         folder=tmp_path), encoding="utf-8")
    tour = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30  # a loaded machine may take a while to reach the step
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    tour.send_signal(signal.SIGTERM)
    stdout, _ = tour.communicate(timeout=30)
    assert tour.returncode == 143, stdout
    assert re.search(r"  ✗ +\d+\.\ds  make db-slow · interrupted \(exit 143\)", stdout), stdout
    assert "  cleaned up: sleeper" in stdout and "interrupted: make db-slow" in stdout
    assert not alive(int((tmp_path / "sleeper.pid").read_text()))
    assert not (tmp_path / "never-ran").exists()


def test_a_step_the_machine_cannot_run_is_one_skipped_line_counted_in_its_part(tmp_path: Path) -> None:
    script = tmp_path / "skipping.sh"
    script.write_text(f"""
set -euo pipefail
source {REPO / "scripts" / "tour.sh"}
tour_start {tmp_path / "tour.log"}
part "Pooling"
step "make db-replicas" echo "replication is healthy"
skip_step "make pooler-up (a note)" "pgbouncer is not installed (sudo make deps installs it)"
""", encoding="utf-8")
    result = subprocess.run(["bash", str(script)], env={**os.environ, "COLUMNS": "200"}, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    skipped = "make pooler-up · skipped: pgbouncer is not installed (sudo make deps installs it)"
    assert f"  \N{EN DASH}{' ' * 9}{skipped}" in lines, lines
    assert re.search(r"^Pooling +1 +\d+\.\ds  ok, 1 skipped$", result.stdout, re.M), result.stdout

"""db-upgrade's methods each on a small environment of its own: 14 → 15 (Debian) with link, swap, and kill -9 of
link and swap upgrades in each phase. Independent of one another (not serial): make test spreads them over its
workers."""

from __future__ import annotations

from pathlib import Path

import pytest
from backup_fixtures import AgeKeys, make_keys
from upgrade_support import (
    PHASES,
    LocalProject,
    kill_at,
    kill_when,
    past_no_return_the_rerun_finishes,
    throwaway,
    unchanged,
)

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> AgeKeys:
    return make_keys(tmp_path_factory.mktemp("upgrade-method-keys"))


@pytest.mark.parametrize(("target", "method"), [(15, "link"), (18, "swap")], ids=["14-to-15-debian-link", "swap"])
def test_a_method_keeps_every_table(tmp_path: Path, keys: AgeKeys, target: int, method: str) -> None:
    """14 → 15 with Debian's build (link), and pg_upgrade --swap to 18: the same rows after, on the new major."""
    with throwaway(tmp_path / method, keys, target) as project:
        before = project.fingerprints()
        result = project.cli("upgrade", "--env", "production", "--to", str(target), "--method", method, "--yes")
        assert result.returncode == 0, result.stdout + result.stderr
        assert project.major() == target
        assert project.fingerprints() == before


@pytest.mark.parametrize("phase", ["upgrading", "upgraded", "started"])
def test_link_killed_in_a_phase_leaves_the_old_cluster_or_the_new_one(tmp_path: Path, keys: AgeKeys,
                                                                      phase: str) -> None:
    """kill -9 of a link upgrade (each on its own 14 environment: link cannot go back once the new server started).
    Before the point of no return --rollback brings PostgreSQL 14 back exactly (pg_upgrade's pg_control.old renamed
    back); after it, --rollback is refused and the re-run finishes the upgrade."""
    with throwaway(tmp_path / "link", keys, 18) as project:
        before = project.fingerprints()
        system = project.system_identifier()
        killed = kill_at(project, phase, "--method", "link")
        state = project.state()
        assert state is not None, killed
        if not state["point_of_no_return"]:
            back = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
            assert back.returncode == 0, back.stderr
            assert project.system_identifier() == system
            unchanged(project, before)
        else:  # the kill landed at or after the first start (it can, even when asked for an earlier phase)
            assert PHASES.index(killed) >= PHASES.index("started"), killed
            past_no_return_the_rerun_finishes(project, "link", before)


def _swapping(project: LocalProject) -> bool:
    """pg_upgrade --swap is moving the old cluster's database directories into the new one (its own folder for
    what it moves aside exists in the old data directory, which is then no longer a cluster that can start)."""
    return (project.home / "data" / "base" / "moved_for_upgrade").exists() or (
        project.home / "upgrade" / "pg14" / "data" / "base" / "moved_for_upgrade").exists()


def test_swap_killed_in_every_phase_leaves_the_old_cluster_or_the_new_one(tmp_path: Path, keys: AgeKeys) -> None:
    """kill -9 of a swap upgrade in each phase, on one 14 environment. Up to the first start of the new server
    --rollback brings PostgreSQL 14 back exactly, also when the kill lands while pg_upgrade --swap is moving the
    old cluster's directories (its hard-linked copy is put back); after the first start the rollback is refused and
    the re-run finishes the upgrade."""
    with throwaway(tmp_path / "swapkill", keys, 18) as project:
        before = project.fingerprints()
        system = project.system_identifier()
        moved_midway = False
        for attempt in range(3):  # pg_upgrade moves directories in milliseconds: a kill may land after
            killed = kill_when(project, lambda _state: _swapping(project), "pg_upgrade --swap moving directories",
                                "--method", "swap", pause=0.001)
            state = project.state()
            assert state is not None and state["kept"] is True, (attempt, killed, state)
            assert state["point_of_no_return"] is False, state
            moved_midway = killed == "upgrading"  # pg_upgrade had begun moving and had not finished
            back = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
            assert back.returncode == 0, back.stderr
            assert project.system_identifier() == system
            unchanged(project, before)
            if moved_midway:
                break
        assert moved_midway or killed == "upgraded", killed
        for phase in ("stopped", "upgraded", "switched"):
            killed = kill_at(project, phase, "--method", "swap")
            state = project.state()
            assert state is not None, (phase, killed)
            if state["point_of_no_return"]:
                # From switched to the new server's first start takes milliseconds: on a loaded machine the kill
                # can land after it (CI saw it). That is the case past the point of no return, below.
                assert PHASES.index(killed) >= PHASES.index("started"), (phase, killed)
                break
            back = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
            assert back.returncode == 0, (phase, back.stderr)
            assert project.system_identifier() == system
            unchanged(project, before)
        else:
            killed = kill_at(project, "started", "--method", "swap")
            state = project.state()
        assert state is not None and state["point_of_no_return"] is True, state
        past_no_return_the_rerun_finishes(project, "swap", before)
        assert not (project.home / "upgrade" / "pg14.kept").exists()
        assert project.cli("upgrade", "--env", "production", "--finish", "--yes").returncode == 0
        assert not (project.home / "upgrade").exists()

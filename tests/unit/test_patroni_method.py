"""The toolkit's create_replica_method as Patroni calls it: the staged backup moved into the data directory, exit 1
(Patroni's next method) when nothing is staged, and never over a data directory that holds something."""

from __future__ import annotations

from pathlib import Path

from cuisine_db.postgres import patroni_method


def _patroni_args(seed: Path, datadir: Path) -> list[str]:
    return ["--seed", str(seed), "--scope=ha", "--role=replica", f"--datadir={datadir}",
            "--connstring=dbname=postgres user=cuisine_replication host=127.0.0.1 port=5"]


def test_a_staged_backup_is_moved_into_place(tmp_path: Path) -> None:
    seed, datadir = tmp_path / "seed", tmp_path / "data"
    (seed / "data" / "base").mkdir(parents=True)
    (seed / "data" / "PG_VERSION").write_text("18\n")
    (seed / "BACKUP").write_text("ha-full-20261205T210000Z\n")
    datadir.mkdir()  # Patroni may leave an empty one
    assert patroni_method.main(_patroni_args(seed, datadir)) == 0
    assert (datadir / "PG_VERSION").read_text() == "18\n" and (datadir / "base").is_dir()
    assert not (seed / "data").exists()


def test_nothing_staged_hands_over_to_patronis_next_method(tmp_path: Path) -> None:
    seed, datadir = tmp_path / "seed", tmp_path / "data"
    seed.mkdir()
    assert patroni_method.main(_patroni_args(seed, datadir)) == 1
    assert not datadir.exists()


def test_a_data_directory_that_holds_something_is_left_alone(tmp_path: Path) -> None:
    seed, datadir = tmp_path / "seed", tmp_path / "data"
    (seed / "data").mkdir(parents=True)
    (seed / "data" / "PG_VERSION").write_text("18\n")
    datadir.mkdir()
    (datadir / "PG_VERSION").write_text("14\n")
    assert patroni_method.main(_patroni_args(seed, datadir)) == 1
    assert (datadir / "PG_VERSION").read_text() == "14\n" and (seed / "data" / "PG_VERSION").exists()


def test_a_call_without_the_seed_folder_is_a_usage_error(tmp_path: Path) -> None:
    assert patroni_method.main([f"--datadir={tmp_path}"]) == 2

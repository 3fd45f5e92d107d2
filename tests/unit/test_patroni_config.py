"""[environments.E.patroni] without a server: what is refused (exit 2, one line), and endpoints that do not answer
(exit 3, one line, nothing changed) — no Patroni is running behind these ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cuisine_db.config import load_settings
from cuisine_db.errors import ConfigError, UnavailableError
from cuisine_db.postgres import patroni
from cuisine_db.postgres.ports import free_port

DSN = 'dsn = "host=ignored user=cuisine_ops dbname=cuisine"\n'


def write(tmp_path: Path, body: str) -> Path:
    config = tmp_path / "cuisine-db.toml"
    config.write_text(body)
    return config


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
    environ.pop("CUISINE_DB_ENV", None)
    return subprocess.run([sys.executable, "-m", "cuisine_db", *args], cwd=config.parent, env=environ,
                          capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("section", "words"), [
    ("rest = []\n", "name the REST endpoints"),
    ('rest = ["db1:8008"]\n', "give http://host:port"),
    ('rest = ["http://user:pw@db1:8008"]\n', "give http://host:port"),
    ('rest = ["http://db1:8008/cluster"]\n', "give http://host:port"),
    ('rest = ["http://db1:99999"]\n', "out of range"),
    ('rest = ["http://db1:8008", "http://db1:8008"]\n', "listed twice"),
    ('etcd = ["http://etcd1:2379"]\n', "need the scope"),
    ('etcd = ["http://etcd1:2379"]\nscope = "a b"\n', "scope"),
    ('rest = ["http://db1:8008"]\nmembers = 3\n', "one or the other"),
    ('rest = ["http://db1:8008"]\ntimeout_seconds = 0\n', "timeout_seconds"),
    ('rest = ["http://db1:8008"]\nrest_password_env = "lower case"\n', "rest_password_env"),
    ('rest = ["http://db1:8008"]\nleader = "db1"\n', "unknown key"),
])
def test_a_bad_patroni_section_is_refused_in_one_line_with_exit_2(tmp_path: Path, section: str, words: str) -> None:
    config = write(tmp_path, f"[environments.ha]\n{DSN}[environments.ha.patroni]\n{section}")
    with pytest.raises(ConfigError) as raised:
        load_settings({"CUISINE_DB_CONFIG": str(config)})
    assert words in raised.value.message
    assert "environments.ha.patroni" in raised.value.message
    result = cli(config, "cluster", "status", "--env", "ha")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(("env", "words"), [
    ("[environments.ha]\n[environments.ha.patroni]\nrest = [\"http://db1:8008\"]\n", "needs a dsn"),
    ("[environments.ha]\nport = 56001\n[environments.ha.patroni]\nmembers = 3\n", "leave out port"),
    (f"[environments.ha]\n{DSN}[environments.ha.patroni]\nmembers = 3\n", "embedded cluster here"),
    (f"[environments.ha]\n{DSN}port = 56001\n[environments.ha.patroni]\nrest = [\"http://db1:8008\"]\n",
     "has only dsn"),
    (f"[environments.ha]\n{DSN}[environments.ha.patroni]\nrest = [\"http://db1:8008\"]\n"
     "[environments.ha.replicas.r1]\ndsn = \"host=r1\"\n", "Patroni's members"),
    ("[environments.ha]\n[environments.ha.patroni]\nmembers = 0\n", "members"),
])
def test_a_patroni_environment_of_the_wrong_shape_is_refused(tmp_path: Path, env: str, words: str) -> None:
    config = write(tmp_path, env)
    with pytest.raises(ConfigError) as raised:
        load_settings({"CUISINE_DB_CONFIG": str(config)})
    assert words in raised.value.message


def test_the_default_configuration_has_an_embedded_ha_environment() -> None:
    repo = Path(__file__).resolve().parents[2]
    settings = load_settings({"CUISINE_DB_CONFIG": str(repo / "cuisine-db.toml")})
    ha = settings.env("ha")
    assert ha.embedded_patroni and ha.patroni is not None and ha.patroni.members == 3
    assert not ha.is_local  # never a single local cluster: commands follow Patroni's leader


@pytest.mark.parametrize("kind", ["rest", "etcd"])
def test_unreachable_endpoints_are_exit_3_in_one_line_and_change_nothing(tmp_path: Path, kind: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    section = f'rest = ["{dead}"]\n' if kind == "rest" else f'etcd = ["{dead}"]\nscope = "cuisine"\n'
    config = write(tmp_path, f"[environments.ha]\n{DSN}[environments.ha.patroni]\n{section}timeout_seconds = 1\n")
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    with pytest.raises(UnavailableError) as raised:
        patroni.cluster(settings, settings.env("ha"))
    assert dead in raised.value.message
    for args in (("replica", "list", "--env", "ha"), ("replica", "promote", "--env", "ha", "--name", "db2", "--yes"),
                 ("size", "--env", "ha"), ("cluster", "status", "--env", "ha")):
        result = cli(config, *args)
        assert result.returncode == 3, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "answered" in result.stderr
    journal = settings.env_dir(settings.env("ha")) / "journal.jsonl"
    assert not journal.exists() or '"outcome": "ok"' not in journal.read_text()


def test_env_list_shows_an_embedded_patroni_cluster_not_created_yet(tmp_path: Path) -> None:
    """Listing environments never asks a cluster that does not exist yet to answer: the embedded `ha` is shown as
    such and the command succeeds (make demo lists every environment first)."""
    config = write(tmp_path, 'default_env = "ha"\n[environments.ha]\npostgres_version = 18\n'
                             "[environments.ha.patroni]\nmembers = 3\n")
    listed = cli(config, "env", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "leader unknown now" in listed.stdout and "has not been created" in listed.stdout, listed.stdout

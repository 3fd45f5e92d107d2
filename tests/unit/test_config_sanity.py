"""cuisine-db.toml is read strictly (issue 16): `protected` is a boolean, production is protected unless it says
otherwise, an empty env= is a usage error, and the variable or key at fault is the one named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cuisine_db.config import Settings, load_settings
from cuisine_db.errors import ConfigError, UsageError


def settings_of(tmp_path: Path, body: str, **environ: str) -> Settings:
    config = tmp_path / "cuisine-db.toml"
    config.write_text(body)
    return load_settings({"CUISINE_DB_CONFIG": str(config), **environ})


@pytest.mark.parametrize("value", ['"off"', '"yes"', '"true"', "0", "1", '""'])
def test_protected_must_be_a_boolean(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"environments\.production\.protected") as caught:
        settings_of(tmp_path, f"[environments.production]\nport = 55999\nprotected = {value}\n")
    assert caught.value.exit_code == 2


def test_production_is_protected_unless_it_says_false(tmp_path: Path) -> None:
    unsaid = settings_of(tmp_path, "[environments.production]\nport = 55999\n[environments.dev]\nport = 55998\n")
    assert unsaid.env("production").protected
    assert not unsaid.env("dev").protected
    said = settings_of(tmp_path, "[environments.production]\nport = 55999\nprotected = false\n")
    assert not said.env("production").protected
    other = settings_of(tmp_path, "[environments.live]\nport = 55999\nprotected = true\n")
    assert other.env("live").protected


def test_an_empty_env_is_a_usage_error_not_the_default(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, "[environments.development]\nport = 55999\n")
    for empty in ("", "  "):
        with pytest.raises(UsageError, match=r"env= \(--env\) is empty") as caught:
            settings.env(empty)
        assert caught.value.exit_code == 2
    assert settings.env(None).name == "development"


def test_a_bogus_cuisine_db_env_names_the_variable(tmp_path: Path) -> None:
    body = 'default_env = "development"\n[environments.development]\nport = 55999\n'
    with pytest.raises(ConfigError) as caught:
        settings_of(tmp_path, body, CUISINE_DB_ENV="bogus")
    assert caught.value.message.startswith("$CUISINE_DB_ENV is 'bogus'")
    assert "default_env" not in caught.value.message
    # The file's own key is named when it is the one at fault, whatever the variable says.
    bad_file = 'default_env = "bogus"\n[environments.development]\nport = 55999\n'
    with pytest.raises(ConfigError, match="default_env: 'bogus'"):
        settings_of(tmp_path, bad_file, CUISINE_DB_ENV="development")


def test_the_cli_says_so_in_one_line_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\nport = 55999\nprotected = "off"\n')
    base = {"CUISINE_DB_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "cuisine_db", "env", "list"], env=base, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "environments.production.protected" in result.stderr and "Traceback" not in result.stderr
    config.write_text("[environments.development]\nport = 55999\n")
    empty = subprocess.run([sys.executable, "-m", "cuisine_db", "env", "show", "--env", ""], env=base,
                           capture_output=True, text=True, timeout=60, check=False)
    assert empty.returncode == 2 and "is empty" in empty.stderr, empty.stderr
    bogus = subprocess.run([sys.executable, "-m", "cuisine_db", "env", "list"],
                           env={**base, "CUISINE_DB_ENV": "bogus"}, capture_output=True, text=True, timeout=60,
                           check=False)
    assert bogus.returncode == 2 and "$CUISINE_DB_ENV" in bogus.stderr, bogus.stderr


def test_a_missing_file_names_the_variable_that_pointed_at_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$CUISINE_DB_CONFIG"):
        load_settings({"CUISINE_DB_CONFIG": str(tmp_path / "absent.toml")})

"""Replicas and pooling without a server: names, the recorded topology, what routing refuses, the plans for a
remote environment, pool sizes and pgbouncer.ini, and the configuration's checks."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cuisine_db.backup.physical import check_source
from cuisine_db.config import Environment, PoolerConfig, Settings, load_settings
from cuisine_db.errors import ConfigError, RefusedError, UnavailableError, UsageError
from cuisine_db.ops.confirmation import AskWord
from cuisine_db.pooler.setup import render_ini
from cuisine_db.pooler.sizing import size_pools
from cuisine_db.postgres import client_environ, connection_params, topology
from cuisine_db.postgres.ports import free_port
from cuisine_db.replicas import drop as dropping
from cuisine_db.replicas import lag, plans, replica_service
from cuisine_db.replicas import patroni as patroni_replicas
from cuisine_db.replicas.create import seed_backup
from cuisine_db.replicas.members import check_name, members
from cuisine_db.replicas.routing import backup_source


def settings_for(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "cuisine-db.toml"
    config.write_text(text)
    return load_settings({"CUISINE_DB_CONFIG": str(config)})


LOCAL = "[environments.dev]\nport = 56990\n"
REMOTE = ('[environments.prod]\ndsn = "host=db.internal port=5432 user=ops dbname=cuisine"\n'
          '[environments.prod.replicas.reports1]\ndsn = "host=r1.internal port=5433 sslmode=verify-full"\n'
          'slot = "cuisine_reports1"\n')


def test_replica_names_become_folders_slots_and_application_names_so_only_plain_ones_pass() -> None:
    assert check_name("reports1") == "reports1"
    for bad in ("", "any", "primary", "Reports", "1reports", "re-ports", "r;x", "../x", "a" * 32, "r x"):
        with pytest.raises(UsageError):
            check_name(bad)


def test_configuration_lists_replicas_for_remote_environments_only_and_never_a_password(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, REMOTE)
    [member] = members(settings, settings.env("prod"))
    assert (member.name, member.slot, member.local) == ("reports1", "cuisine_reports1", False)
    # Where it is comes from its dsn; who connects and to which database stay the environment's.
    assert member.target.params == {"host": "r1.internal", "port": "5433", "sslmode": "verify-full"}
    bad = [
        LOCAL + '[environments.dev.replicas.r1]\ndsn = "host=x"\n',
        REMOTE.replace("port=5433", "port=5433 password=secret"),
        REMOTE.replace("replicas.reports1", "replicas.any"),
        REMOTE.replace('dsn = "host=r1.internal port=5433 sslmode=verify-full"', 'dsn = "port=5433"'),
        LOCAL + "replica_max_lag_seconds = 0\n",
        LOCAL + '[environments.dev.pooler]\nauth_password_env = "hunter2"\n',
    ]
    for text in bad:
        with pytest.raises(ConfigError):
            settings_for(tmp_path, text)


def test_a_replica_target_replaces_the_primarys_whole_address_even_a_patroni_host_list(tmp_path: Path) -> None:
    patroni = REMOTE.replace("host=db.internal port=5432",
                             "host=pg1.internal,pg2.internal,pg3.internal port=5432,5432,5432 "
                             "target_session_attrs=read-write")
    settings = settings_for(tmp_path, patroni)
    env = settings.env("prod")
    [member] = members(settings, env)
    primary = connection_params(settings, env)
    assert primary["host"] == "pg1.internal,pg2.internal,pg3.internal"
    assert client_environ(settings, env)["PGTARGETSESSIONATTRS"] == "read-write"  # pg_dump, psql follow the leader
    replica = connection_params(settings, env, target=member.target)
    assert {k: replica.get(k) for k in ("host", "port", "sslmode", "target_session_attrs", "user", "dbname")} == {
        "host": "r1.internal", "port": "5433", "sslmode": "verify-full", "target_session_attrs": None,
        "user": "ops", "dbname": "cuisine"}
    assert "PGTARGETSESSIONATTRS" not in client_environ(settings, env, target=member.target)


def test_the_topology_file_round_trips_and_refuses_folders_the_tool_never_writes(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, LOCAL)
    env = settings.env("dev")
    assert topology.load(settings, env) == topology.Topology()
    assert topology.primary_node(settings, env).port == 56990
    node = topology.Node("reports1", topology.replica_home("reports1"), 56991, "cuisine_reports1", "2025-01-01")
    with topology.editing(settings, env) as edit:
        edit.set(edit.current.with_replica(node))
        edit.set(dataclasses.replace(edit.current, primary=node, replicas=()))
    loaded = topology.load(settings, env)
    assert loaded.primary == node and loaded.replicas == ()
    assert topology.primary_node(settings, env).port == 56991
    assert topology.home_of(settings, env, node) == settings.env_dir(env) / "replicas" / "reports1"
    assert topology.path(settings, env).stat().st_mode & 0o077 == 0
    raw = json.loads(topology.path(settings, env).read_text())
    raw["primary"]["home"] = "../../elsewhere"
    topology.path(settings, env).write_text(json.dumps(raw))
    with pytest.raises(UnavailableError):
        topology.load(settings, env)


def status(**changes: object) -> lag.ReplicaStatus:
    healthy = lag.ReplicaStatus(name="r1", where="127.0.0.1:1", local=True, running=True, reachable=True,
                                problem=None, in_recovery=True, paused=False, receiver="streaming", replay_bytes=0,
                                delay_seconds=0.0, streaming=None, slot=None)
    return dataclasses.replace(healthy, **changes)  # type: ignore[arg-type]


def test_routing_takes_a_replica_only_within_both_bounds() -> None:
    env = Environment(name="e", port=56990, replica_max_lag_seconds=5, replica_max_lag_bytes=1000)
    assert lag.unfit(status(), env) is None
    assert lag.unfit(status(replay_bytes=1000, delay_seconds=5.0), env) is None
    refused = [status(reachable=False, problem="stopped"), status(in_recovery=False),
               status(delay_seconds=5.1, replay_bytes=10), status(replay_bytes=1001, delay_seconds=0.1),
               status(replay_bytes=10, delay_seconds=None), status(replay_bytes=None, delay_seconds=None)]
    reasons = [lag.unfit(one, env) for one in refused]
    assert all(reasons), reasons
    assert "stopped" in str(reasons[0]) and "5.1 s behind" in str(reasons[2]) and "1,001 bytes" in str(reasons[3])
    assert lag.lsn("16/B374D848") == (0x16 << 32) + 0xB374D848 and lag.lsn(None) is None


def test_a_remote_environment_gets_steps_without_any_password(tmp_path: Path) -> None:
    env = settings_for(tmp_path, REMOTE).env("prod")
    made = plans.create_plan(env, "reports2", 5434)
    text = "\n".join(line for _, lines in made.steps for line in lines)
    assert "--slot cuisine_reports2" in text and "--host db.internal --port 5432" in text and "port = 5434" in text
    assert "PASSWORD '" not in text.upper() and "PASSWORD=" not in text.upper()
    with pytest.raises(UsageError):
        plans.create_plan(env, "reports1")  # already listed
    promoted = plans.promote_plan(env, "reports1")
    assert "pg_promote" in "\n".join(line for _, lines in promoted.steps for line in lines)
    with pytest.raises(UsageError):
        plans.promote_plan(env, "reports7")


def test_pool_sizes_come_from_the_servers_slots_and_the_applications() -> None:
    config = PoolerConfig(applications=6, connections_per_application=25, reserved_server_connections=10)
    sizes = size_pools(config, max_connections=100, superuser_reserved=3, reserved=2, roles=2)
    assert sizes.budget == 85  # 100 - 3 - 2 - 10
    assert (sizes.default_pool_size, sizes.reserve_pool_size) == (42, 0)  # (85 - 1 for lookups) // 2
    assert sizes.max_client_conn == 6 * 25 + 5
    odd = size_pools(config, max_connections=100, superuser_reserved=3, reserved=0, roles=4)
    assert (odd.default_pool_size, odd.reserve_pool_size) == (21, 2)  # 86 for the pools: 4 x 21, 2 to borrow
    with pytest.raises(UsageError, match="no server connections left"):
        size_pools(config, max_connections=14, superuser_reserved=3, reserved=0, roles=1)


def test_pgbouncer_ini_holds_no_secret_and_refuses_values_that_would_break_it(tmp_path: Path) -> None:
    env = Environment(name="dev", port=56990, pooler=PoolerConfig(port=56991))
    assert env.pooler is not None
    sizes = size_pools(env.pooler, max_connections=50, superuser_reserved=3, reserved=0, roles=1)
    text = render_ini(env, env.pooler, tmp_path, {"cuisine": {"host": "127.0.0.1", "port": "56990",
                                                              "dbname": "cuisine"}}, sizes, local=True)
    lines = text.splitlines()
    for wanted in ("pool_mode = transaction", "max_db_connections = 37", "default_pool_size = 36",
                   f"auth_file = {tmp_path / 'userlist.txt'}", "unix_socket_dir = ",
                   "cuisine = host=127.0.0.1 port=56990 dbname=cuisine", "cuisine_pgbouncer = max_user_connections=1",
                   "auth_query = SELECT uname, phash FROM cuisine_pooler.lookup($1)"):
        assert wanted in lines, wanted
    assert "password" not in text.lower().replace("passwords", "")
    with pytest.raises(UsageError):
        render_ini(env, env.pooler, tmp_path, {"cuisine": {"host": "x\n[pgbouncer]", "dbname": "c"}}, sizes,
                   local=True)


def test_a_backup_reads_the_replica_asked_for_and_only_a_full_one_is_physical() -> None:
    assert backup_source(None, None) is None
    assert backup_source(None, "primary") is None
    assert backup_source(None, "replica") == "any"
    assert backup_source("reports1", None) == "reports1"
    for args in ((None, "standby"), ("reports1", "primary")):
        with pytest.raises(UsageError):
            backup_source(*args)
    check_source("full", from_replica=True)
    check_source("incremental", from_replica=False)
    with pytest.raises(UsageError, match="not offered"):
        check_source("incremental", from_replica=True)


def test_a_replica_is_seeded_from_the_backup_asked_for_and_only_on_a_local_environment(tmp_path: Path) -> None:
    local = settings_for(tmp_path, LOCAL).env("dev")
    assert seed_backup(local, None, None) is None and seed_backup(local, "primary", None) is None
    assert seed_backup(local, "backup", None) == "latest"
    assert seed_backup(local, None, "production-full-20260101T000000Z") == "production-full-20260101T000000Z"
    for origin, backup in (("standby", None), ("primary", "latest"), ("backup", "../x")):
        with pytest.raises(UsageError):
            seed_backup(local, origin, backup)
    remote = settings_for(tmp_path, REMOTE).env("prod")
    assert seed_backup(remote, None, None) is None  # copied from the primary: the steps to apply
    with pytest.raises(UsageError, match="is a remote server: seeding from a backup"):
        seed_backup(remote, "backup", None)


def test_a_patroni_promotion_on_a_protected_environment_is_confirmed_by_the_service_before_patroni_is_asked(
        tmp_path: Path) -> None:
    settings = settings_for(tmp_path, '[environments.ha]\ndsn = "host=ignored dbname=cuisine"\nprotected = true\n'
                                      f'[environments.ha.patroni]\nrest = ["http://127.0.0.1:{free_port()}"]\n')
    env = settings.env("ha")
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        patroni_replicas.promote(settings, env, "member2")
    assert refused.value.exit_code == 4
    with pytest.raises(RefusedError, match="did not match"):
        patroni_replicas.promote(settings, env, "member2", ask=lambda _action: "production")
    # Confirmed: only then is Patroni asked (nothing answers on that port).
    with pytest.raises(UnavailableError):
        patroni_replicas.promote(settings, env, "member2", yes=True)


def test_dropping_a_member_of_a_patroni_environment_is_refused_by_the_service_whoever_calls_it(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, '[environments.ha]\ndsn = "host=ignored dbname=cuisine"\n'
                                      f'[environments.ha.patroni]\nrest = ["http://127.0.0.1:{free_port()}"]\n')
    env = settings.env("ha")
    for attempt in (lambda: dropping.kind_of(settings, env, "member2"),
                    lambda: dropping.drop(settings, env, "member2")):
        with pytest.raises(UsageError, match="a member leaves when its Patroni is stopped") as refused:
            attempt()
        assert refused.value.exit_code == 2
    assert not settings.env_dir(env).exists() or not any(settings.env_dir(env).iterdir())


def test_promoting_and_dropping_confirm_in_the_service_through_the_one_confirmation_rule(tmp_path: Path) -> None:
    """Promoting and dropping ask through ops/confirmation whoever calls them: on a protected environment the
    environment's name is typed (never the replica's), without a terminal it is refused naming the environment,
    and a refusal changes nothing but the journal's line saying so (replicas/replica_service journals)."""
    settings = settings_for(tmp_path, LOCAL.replace("[environments.dev]", "[environments.prod]") + "protected = true\n"
                            + LOCAL.replace("port = 56990", "port = 56980"))
    replica = topology.Node("reports1", topology.replica_home("reports1"), 56991, "cuisine_reports1", "2025-01-01")
    former = topology.Node("old1", topology.replica_home("old1"), 56992, None, "2025-01-02")
    for name in ("prod", "dev"):
        with topology.editing(settings, settings.env(name)) as edit:
            edit.set(dataclasses.replace(edit.current.with_replica(replica), former=(former,)))
    prod, dev = settings.env("prod"), settings.env("dev")
    recorded = topology.path(settings, prod).read_text()
    asked: list[tuple[str, str]] = []

    def typing(answer: str) -> AskWord:
        def ask(action: str, word: str) -> str:
            asked.append((action, word))
            return answer
        return ask

    Attempt = Callable[[AskWord | None], object]
    attempts: list[Attempt] = [lambda ask: replica_service.promote_replica(settings, prod, "reports1", ask=ask),
                lambda ask: replica_service.drop_replica(settings, prod, "old1", ask=ask),
                lambda ask: replica_service.drop_replica(settings, prod, "reports1", ask=ask)]
    for attempt in attempts:
        with pytest.raises(RefusedError, match="'prod' needs confirmation and there is no terminal") as refused:
            attempt(None)
        assert refused.value.exit_code == 4
        with pytest.raises(RefusedError, match="did not match the environment's name; nothing was done"):
            attempt(typing("reports1"))
        assert asked.pop()[1] == "prod"
    assert topology.path(settings, prod).read_text() == recorded
    lines = [json.loads(line) for line in (settings.env_dir(prod) / "journal.jsonl").read_text().splitlines()]
    assert [(line["command"], line["outcome"]) for line in lines] == [
        ("promote-replica", "refused"), ("promote-replica", "refused"), ("drop-replica", "refused"),
        ("drop-replica", "refused"), ("drop-replica", "refused"), ("drop-replica", "refused")]
    # The rule is the services' own: called directly (as the upgrade and the benches do), they refuse the same way
    # unless given yes.
    from cuisine_db.replicas import promote as promoting

    for direct in (lambda: promoting.promote(settings, prod, "reports1"), lambda: dropping.drop(settings, prod, "old1"),
                   lambda: dropping.drop(settings, prod, "reports1")):
        with pytest.raises(RefusedError, match="'prod' needs confirmation"):
            direct()
    assert topology.path(settings, prod).read_text() == recorded
    # On an unprotected environment a promotion and a former primary's removal still ask, for the node's own name.
    unprotected: list[tuple[Attempt, str]] = [
        (lambda ask: replica_service.promote_replica(settings, dev, "reports1", ask=ask), "reports1"),
        (lambda ask: replica_service.drop_replica(settings, dev, "old1", ask=ask), "old1")]
    for attempt, name in unprotected:
        with pytest.raises(RefusedError, match="on 'dev' needs confirmation"):
            attempt(None)
        with pytest.raises(RefusedError, match=r"^confirmation did not match; nothing was done$"):
            attempt(typing("dev"))
        assert asked.pop()[1] == name

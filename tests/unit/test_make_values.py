"""Values are data: every target `make help` lists, given hostile values for each variable it reads, runs nothing they
spell (a canary file stays absent, also under `make -n`) and hands the CLI exactly the bytes typed, each one word.

This tests the Makefile's side of the contract, so a recorder stands in for the CLI (what the CLI then does with a
value is its own tests' business; tests/integration/test_make_values_e2e.py runs a few through the real one)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from make_support import MAKEFILE, Reads, Recorder, Run, help_targets, makefile_reads, raw_reads

READS = makefile_reads(MAKEFILE.read_text())
TARGETS = help_targets()
# Flags or goals that open another branch of a recipe, so the variables read only there are covered too.
CONTEXTS: dict[str, list[list[str]]] = {
    "db-archive-data": [["restore=1"]],
    "db-update-config": [["reset=1"]],
    "db-maintenance-mode": [["enable"]],
    "maintenance-mode": [["enable"]],
}
# Every variable any target reads, for the targets that call no CLI (help, demo, test, lint): they must ignore them.
EVERY_VARIABLE = sorted(set().union(*(reads.data | reads.flags for reads in READS.values())))
CANARY = "@CANARY@"  # replaced by the test's canary path
HOSTILE_PARTS = [
    "$1", "$(shell touch @CANARY@)", "${shell touch @CANARY@}", "$(touch @CANARY@)", "`touch @CANARY@`",
    "$$(touch @CANARY@)", "'; touch @CANARY@; '", '"; touch @CANARY@; "', "; touch @CANARY@", "| touch @CANARY@",
    "&& touch @CANARY@", "& touch @CANARY@", "\ntouch @CANARY@\n", "\\\ntouch @CANARY@", "1 --help; touch @CANARY@",
    "$(eval $(shell touch @CANARY@))", "$(error made by make)", "${HOME}", "$$", "$@", "$<", "#", "# ", "--help", "-1",
    "--", "-", "'", '"', "\\", " ", "\t", "\r\n", "=", ",", "(", ")", "$(", "%", "*", "~", "!", ":", "é",
]
ACCEPTED_FLAG_WORDS = {"1", "yes", "true", "0", "no", "false"}


def _usable(value: str) -> bool:
    # make itself drops a value's leading blanks when it reads `name=value`; no Makefile could hand them on.
    return bool(value) and not value[0].isspace() and value.strip() not in ACCEPTED_FLAG_WORDS


hostile = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PARTS),
              st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=3)),
    min_size=1, max_size=6,
).map("".join).filter(_usable)

KITCHEN_SINK = "-1 $1 '\"`touch @CANARY@`\" $(shell touch @CANARY@) ${x}\n; touch @CANARY@ | & # --help \\"


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Recorder:
    return Recorder(tmp_path_factory.mktemp("recorder"))


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("canary") / "pwned"


def marker(name: str) -> str:
    return f"@@{name}@@"


@functools.cache
def benign(recorder: Recorder, target: str, context: tuple[str, ...]) -> Run:
    """The target run with a plain marker for each variable it reads: where each one lands in the CLI's argv."""
    return recorder.make(target, *context, *(f"{name}={marker(name)}" for name in sorted(READS[target].data)))


def contexts(target: str) -> list[tuple[str, ...]]:
    return [(), *(tuple(context) for context in CONTEXTS.get(target, []))]


def arm(value: str, canary: Path) -> str:
    return value.replace(CANARY, str(canary))


def assert_untouched(canary: Path, run: Run) -> None:
    if canary.exists():
        canary.unlink()  # so the next case is judged on its own
        raise AssertionError(f"a hostile value ran: {run.result.args!r}\n{run.result.stderr!r}")


CLI_TARGETS = [target for target in TARGETS if READS[target].calls_cli]
OTHER_TARGETS = [target for target in TARGETS if not READS[target].calls_cli]


def test_make_help_lists_what_the_makefile_defines() -> None:
    assert len(TARGETS) > 60 and all(target in READS for target in TARGETS)
    assert {"help", "db-explain", "db-update-config", "incident-create"} <= set(TARGETS)
    assert OTHER_TARGETS and all(not READS[target].data and not READS[target].flags for target in OTHER_TARGETS)


def test_no_operator_variable_is_expanded_by_make() -> None:
    """Every lowercase variable is read with $(value ...) (through v, opt, given, flag01): a plain $(x) is a hole."""
    assert raw_reads(MAKEFILE.read_text()) == []
    planted = "db-x: $(READY)\n\t@$(call cli,x --limit $(call q,$(limit)))\n"
    assert raw_reads(planted) == ["\t@$(call cli,x --limit $(call q,$(limit)))"]


@pytest.mark.parametrize("target", CLI_TARGETS)
def test_every_variable_a_target_reads_reaches_the_cli_as_one_word(recorder: Recorder, target: str) -> None:
    reads = READS[target]
    landed: set[str] = set()
    for context in contexts(target):
        run = benign(recorder, target, context)
        assert run.result.returncode == 0 and run.argv is not None, run.result.stderr
        landed |= {name for name in reads.data if marker(name).encode() in run.argv}
        if "password" in reads.data:
            assert run.password == marker("password").encode()  # in the environment, never argv
            landed.add("password")
        assert all(b"@@" not in word or word.count(b"@@") == 2 for word in run.argv), run.argv  # whole words only
    assert landed == reads.data


@pytest.mark.parametrize("target", CLI_TARGETS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@example(data=None)
def test_hostile_values_reach_the_cli_as_typed_and_run_nothing(recorder: Recorder, canary: Path, target: str,
                                                              data: st.DataObject | None) -> None:
    reads = READS[target]
    context = data.draw(st.sampled_from(contexts(target))) if data else ()
    values = {name: arm(data.draw(hostile, label=name) if data else KITCHEN_SINK, canary) for name in reads.data}
    assignments = [f"{name}={value}" for name, value in values.items()]
    run = recorder.make(target, *context, *assignments)
    assert_untouched(canary, run)
    assert run.result.returncode == 0 and run.argv is not None, run.result.stderr
    by_marker = {marker(name).encode(): value.encode() for name, value in values.items()}
    expected = [by_marker.get(word, word) for word in benign(recorder, target, context).argv or []]
    assert run.argv == expected
    if "password" in values:
        assert run.password == values["password"].encode()
    dry = recorder.make(target, *context, *assignments, dry_run=True)
    assert_untouched(canary, dry)
    assert dry.result.returncode == 0 and dry.argv is None, dry.result.stderr


@pytest.mark.parametrize("target", [target for target in CLI_TARGETS if READS[target].flags])
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_flag_takes_0_or_1_and_refuses_anything_else_in_one_line(recorder: Recorder, canary: Path, target: str,
                                                                   data: st.DataObject) -> None:
    flag = data.draw(st.sampled_from(sorted(READS[target].flags)))
    value = arm(data.draw(hostile), canary)
    for dry_run in (False, True):
        run = recorder.make(target, f"{flag}={value}", dry_run=dry_run)
        assert_untouched(canary, run)
        assert run.result.returncode == 2 and run.argv is None, run.result.stderr
        assert run.result.stderr.count(b"\n") == 1 and f"give {flag}=1 or {flag}=0".encode() in run.result.stderr


@pytest.mark.parametrize("target", OTHER_TARGETS)
def test_targets_without_the_cli_ignore_every_variable(recorder: Recorder, canary: Path, target: str) -> None:
    assignments = [f"{name}={arm(KITCHEN_SINK, canary)}" for name in EVERY_VARIABLE]
    run = recorder.make(target, *assignments, dry_run=True)
    assert_untouched(canary, run)
    assert run.result.returncode == 0 and run.argv is None, run.result.stderr


def test_the_issue_lines_as_written(recorder: Recorder, canary: Path) -> None:
    """Issue 16's reports, word for word but for the canary's path: each reaches the CLI as typed, nothing runs."""
    touch = f"touch {canary}"
    cases = [
        (["db-seed", f"scale=1 --help; {touch}"], [b"seed", b"--scale", f"1 --help; {touch}".encode()]),
        (["db-explain", f"query=$(shell {touch})"], [b"explain", b"--", f"$(shell {touch})".encode()]),
        (["maintenance-mode", "enable", f"reason=$(shell {touch})"],
         [b"maintenance", b"enable", b"--reason", f"$(shell {touch})".encode()]),
        (["db-explain", "query=SELECT * FROM recipes WHERE user_id = $1", "params=123"],
         [b"explain", b"--params", b"123", b"--", b"SELECT * FROM recipes WHERE user_id = $1"]),
        (["db-update-config", "param=x", "value=-1"], [b"config", b"update", b"--", b"x", b"-1"]),
    ]
    for args, argv in cases:
        for dry_run in (True, False):
            run = recorder.make(*args, dry_run=dry_run)
            assert_untouched(canary, run)
            assert run.result.returncode == 0 and run.argv == (None if dry_run else argv), run.result.stderr


def test_an_empty_env_reaches_the_cli_as_an_empty_word(recorder: Recorder) -> None:
    """`env=` typed with nothing after it is passed on (the CLI refuses it), not taken as the default environment."""
    assert (recorder.make("db-migrate", "env=").argv or [])[-2:] == [b"--env", b""]
    assert recorder.make("db-migrate").argv == [b"migrate", b"up"]
    # An empty flag is an absent one; an empty data value is the CLI's to judge.
    assert recorder.make("db-seed", "yes=", "scale=").argv == [b"seed", b"--scale", b""]


def test_command_line_variables_stay_out_of_the_cli_environment(recorder: Recorder, canary: Path) -> None:
    """make expands an exported variable while building a recipe's environment: none of the operator's is exported."""
    probe = recorder.program.parent / "environment-probe"
    probe.write_text('#!/bin/bash\nenv -0 > "$CUISINE_DB_RECORD"\n')
    probe.chmod(0o755)
    hostile_value = arm("$(shell touch @CANARY@)", canary)
    for dry_run in (False, True):
        run = recorder.make("db-migrate", f"query={hostile_value}", f"PROBE={hostile_value}", program=probe,
                            dry_run=dry_run)
        assert_untouched(canary, run)
    run = recorder.make("db-migrate", "query=x", "PROBE=y", program=probe)
    names = {entry.split(b"=", 1)[0] for entry in run.argv or []}
    assert b"CUISINE_DB_RECORD" in names and not names & {b"query", b"PROBE"}, run.result.stderr


def test_reads_are_found_through_the_makefile_variables() -> None:
    """The parser the tests above rely on, on a planted Makefile."""
    planted = (
        "ARGS = --x $(call v,inner) $(call flag01,quiet,--quiet)\n"
        "db-x: $(READY) ## help with name=value\n\t@$(call cli,x $(ARGS) $(call opt,outer,--outer))\n"
        "db-y: export SECRET := $(value secret)\n"
        "db-y: $(READY) ## more\n\t@$(call cli,y)\n"
    )
    reads = makefile_reads(planted)
    assert reads["db-x"] == Reads({"inner", "outer"}, {"quiet"}, calls_cli=True)
    assert reads["db-y"] == Reads({"secret"}, set(), calls_cli=True)

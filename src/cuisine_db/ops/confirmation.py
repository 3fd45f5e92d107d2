"""The confirmation rule for destructive work on a protected environment: `yes`, or the environment's name typed."""

from __future__ import annotations

from collections.abc import Callable

from cuisine_db.config import Environment
from cuisine_db.errors import RefusedError

# Asks the operator about `action` and returns what they typed; None where there is no one to ask (no terminal).
Ask = Callable[[str], str]
# The same, telling the operator which word to type (the second argument) to go on.
AskWord = Callable[[str, str], str]


def require(env: Environment, action: str, *, yes: bool, ask: Ask | None, question: str | None = None,
            unasked: str | None = None, hint: str = "add yes=1 to the make command (or --yes) once you are sure",
            nothing: str = "nothing was done") -> None:
    """Go on when env is unprotected, `yes` was given, or the operator typed env's name; refuse (exit 4) otherwise,
    before anything is done. A caller may word its own `question` (default: `action`), refusal when there is no one
    to ask (`unasked`, with `hint`), and what a refusal left undone (`nothing`)."""
    if not env.protected or yes:
        return
    if ask is None:
        raise RefusedError(
            unasked or f"{action} on protected environment {env.name!r} needs confirmation and there is no terminal "
                       "to ask",
            hint=hint,
        )
    if ask(question or action).strip() != env.name:
        raise RefusedError(f"confirmation did not match the environment's name; {nothing}")


def env_name_asker(env: Environment, ask: AskWord | None) -> Ask | None:
    """A caller's word asker put the protected-environment question: env's name is the word to type."""
    return None if ask is None else (lambda action: ask(action, env.name))


def require_always(env: Environment, action: str, word: str, *, yes: bool, ask: AskWord | None) -> None:
    """For work that asks on every environment: go on when `yes` was given or the operator typed `word` (env's name
    on a protected environment); refuse (exit 4) otherwise, before anything is done."""
    if yes:
        return
    if ask is None:
        raise RefusedError(f"{action} on {env.name!r} needs confirmation and there is no terminal to ask",
                           hint="add yes=1 to the make command (or --yes) once you are sure")
    if env.protected:
        require(env, action, yes=False, ask=env_name_asker(env, ask))
    elif ask(action, word).strip() != word:
        raise RefusedError("confirmation did not match; nothing was done")

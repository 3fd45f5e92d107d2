"""Passwords: held so they cannot be printed by accident, judged for strength, sent only as SCRAM verifiers.

The verifier is computed on the client by libpq (PQencryptPasswordConn, through psycopg), so the plain
password never reaches the server, its logs (even with log_statement = all), the journal or the output.
Strength is judged with zxcvbn (Dropbox's estimator, which knows common passwords, words, names,
keyboard patterns and the user's own name) rather than composition rules, as NIST SP 800-63B advises.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg

from cuisine_db.errors import UsageError

MIN_LENGTH = 12
MAX_LENGTH = 1024
# zxcvbn's score 4 means more than 10^10 guesses: out of reach of an offline attack on a stolen verifier.
MIN_SCORE = 4
SCRAM = "scram-sha-256"


class Secret:
    """A password that says [redacted] wherever it is printed, logged or put in a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret([redacted])"

    __str__ = __repr__


def generate() -> Secret:
    """A new random password (32 URL-safe characters, 192 bits) for roles nobody types."""
    return Secret(secrets.token_urlsafe(24))


def check_strength(password: Secret, username: str, *, context: tuple[str, ...] = (),
                   min_length: int = MIN_LENGTH, min_score: int = MIN_SCORE) -> None:
    """Refuse a password that is short, contains the username, or is easy to guess (common words, patterns)."""
    from zxcvbn import zxcvbn  # its dictionaries load on first use; keep them off every other command's path

    value = password.reveal()
    hint = "generate one, e.g. openssl rand -base64 24"
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise UsageError("the password contains control characters (a newline?)", hint=hint)
    if len(value) < min_length:
        raise UsageError(f"the password is too short ({len(value)} characters; at least {min_length})", hint=hint)
    if len(value) > MAX_LENGTH:
        raise UsageError(f"the password is longer than {MAX_LENGTH} characters")
    if username.lower() in value.lower():
        raise UsageError("the password contains the username", hint=hint)
    # zxcvbn is exponential in pathological inputs; the first 100 characters decide the score anyway.
    result = zxcvbn(value[:100], user_inputs=[username, *context])
    if result["score"] < min_score:
        feedback = result["feedback"]
        reason = feedback.get("warning") or " ".join(feedback.get("suggestions") or []) or "common words or patterns"
        raise UsageError(f"the password is too easy to guess: {reason.rstrip('.')}", hint=hint)


def verifier(conn: psycopg.Connection[Any], password: Secret, username: str) -> str:
    """The SCRAM-SHA-256 verifier of a password, computed by libpq on this machine; the server sees only it."""
    raw = conn.pgconn.encrypt_password(password.reveal().encode("utf-8"), username.encode("utf-8"), SCRAM.encode())
    text = raw.decode("ascii")
    if not text.startswith("SCRAM-SHA-256$"):
        raise RuntimeError("libpq returned something other than a SCRAM-SHA-256 verifier")
    return text

"""One exception hierarchy; each error carries a message a person can act on, a hint and an exit code."""

from __future__ import annotations

EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_REFUSED = 4


class CuisineDbError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = EXIT_FINDINGS

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CuisineDbError):
    """Bad input: a name, a number, an option or a file the command cannot accept."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The configuration file is missing, unreadable or invalid."""


class UnavailableError(CuisineDbError):
    """The server, a binary or the repository cannot be reached or operated."""

    exit_code = EXIT_UNAVAILABLE


class ServerDownError(UnavailableError):
    """The server is not running or does not answer (monitoring reports it as critical, not unknown)."""


class RefusedError(CuisineDbError):
    """A safety rail refused the command (protected environment, drift, maintenance mode)."""

    exit_code = EXIT_REFUSED


class FailedError(CuisineDbError):
    """The command ran and the work failed or found problems (a migration's SQL, a check)."""

    exit_code = EXIT_FINDINGS

"""Query texts from pg_stat_activity made safe to show: passwords removed, one line, bounded length."""

from __future__ import annotations

import re

# `PASSWORD 'x'` (CREATE/ALTER ROLE, user mappings' OPTIONS (password 'x')) and `password=x` in conninfo strings.
_QUOTED = re.compile(r"(password\s*)'(?:[^']|'')*'", re.IGNORECASE)
_CONNINFO = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(query: str) -> str:
    """The statement with every password literal replaced."""
    return _CONNINFO.sub(rf"\g<1>{REDACTED}", _QUOTED.sub(rf"\g<1>'{REDACTED}'", query))


def shown(query: str | None, limit: int = 300) -> str:
    """A redacted, single-line and shortened query text for tables, findings and the journal."""
    if not query:
        return ""
    text = " ".join(redact(query).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""Split migration SQL into statements with PostgreSQL's own parser (pglast), so `$$` bodies survive."""

from __future__ import annotations

import pglast
from pglast import parser


def statements(text: str) -> list[str]:
    """The statements in a migration section, in order.

    The real parser handles every construct (dollar quotes, BEGIN ATOMIC bodies). When it rejects the
    text, we fall back to the real lexer and cut at top-level semicolons, so the server, not us, reports
    the syntax error with its position.
    """
    if not text.strip():
        return []
    try:
        slices = pglast.split(text, with_parser=True, only_slices=True)
    except pglast.parser.ParseError:
        return _by_semicolons(text)
    encoded = text.encode()
    return [encoded[s].decode().strip() for s in slices if encoded[s].decode().strip()]


def _by_semicolons(text: str) -> list[str]:
    # pglast.split(with_parser=False) silently drops statements that do not start with a keyword,
    # which would hide a typo; cutting at the lexer's ';' tokens keeps every byte.
    encoded = text.encode()
    pieces: list[str] = []
    start = 0
    for token in parser.scan(text):
        if token.name == "ASCII_59":
            pieces.append(encoded[start:token.start].decode())
            start = token.end + 1
    pieces.append(encoded[start:].decode())
    return [piece.strip() for piece in pieces if _has_code(piece)]


def _has_code(piece: str) -> bool:
    return any(token.name not in ("SQL_COMMENT", "C_COMMENT") for token in parser.scan(piece))

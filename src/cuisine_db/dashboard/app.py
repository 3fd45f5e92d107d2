"""The dashboard's web application: five read-only pages rendered on the server, behind a token off loopback.

Nothing here acts: there is no form, no POST route and no script; every page names the `make` line that acts.
Unknown pages and unexpected query parameters get a plain 404, a missing or wrong token a plain 401; no error
ever shows a traceback (Starlette's debug stays off and a last handler turns any failure into a plain 500)."""

from __future__ import annotations

import hmac
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment as Jinja
from jinja2 import PackageLoader
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from cuisine_db.config import Environment, Settings
from cuisine_db.dashboard import reads, svg
from cuisine_db.diagnose.query_text import shown
from cuisine_db.errors import CuisineDbError

COOKIE = "cuisine_dashboard"
NOTHING = "\u2013"  # an en dash: no figure
LIVE_REFRESH_SECONDS = 5
# Statements db-explain can plan (COPY, ANALYZE, utility statements have no plan: no link is offered).
EXPLAINABLE = ("select", "with", "insert", "update", "delete", "values", "table")
PAGES = [("overview", "/", "Overview"), ("recovery", "/recovery", "Recovery"), ("database", "/database", "Database"),
         ("live", "/live", "Live"), ("incidents", "/incidents", "Incidents")]
HEADERS = {
    # No script at all, styles inline, nothing from elsewhere; never framed; never cached; no referrer leaves.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def size(value: float | None) -> str:
    if value is None:
        return NOTHING
    for name, unit in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if abs(value) >= unit:
            return f"{value / unit:,.1f} {name}"
    return f"{value:,.0f} B"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NOTHING
    seconds = float(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _moment(value: datetime | str) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def ago(value: datetime | str | None) -> str:
    if value is None:
        return "never"
    moment = _moment(value)
    if moment is None:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{duration((datetime.now(UTC) - moment).total_seconds())} ago"


def when(value: datetime | str | None) -> str:
    if value is None:
        return NOTHING
    moment = _moment(value)
    if moment is None:
        return str(value)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def templates() -> Jinja:
    jinja = Jinja(loader=PackageLoader("cuisine_db.dashboard", "templates"), autoescape=True,
                  trim_blocks=True, lstrip_blocks=True)
    jinja.filters.update(size=size, duration=duration, ago=ago, when=when, redacted=lambda text: shown(text, 4000))
    jinja.globals.update(pages=PAGES, svg=svg, refresh=LIVE_REFRESH_SECONDS, explainable=EXPLAINABLE)
    return jinja


def _loopback_host(header: str) -> bool:
    """Whether a Host header names this machine's loopback (with or without a port; IPv6 in brackets)."""
    name = header[1:header.find("]")] if header.startswith("[") else header.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class _Guard(BaseHTTPMiddleware):
    """The Host (on loopback), the token (elsewhere) and the headers every answer carries."""

    def __init__(self, app: Any, token: str | None, loopback: bool) -> None:
        super().__init__(app)
        self.token = token
        self.loopback = loopback

    def _allowed(self, request: Request) -> bool:
        if self.token is None:
            return True
        offered = request.cookies.get(COOKIE) or request.query_params.get("token") or ""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            offered = header[7:].strip()
        return hmac.compare_digest(offered.encode(), self.token.encode())

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if self.loopback and not _loopback_host(request.headers.get("host", "")):
            # A name that resolves to 127.0.0.1 from a web page elsewhere (DNS rebinding) gets nothing.
            response: Response = PlainTextResponse("400: this dashboard answers on loopback names only",
                                                   status_code=400)
        elif not self._allowed(request):
            response = PlainTextResponse("401: a valid access token is needed", status_code=401)
        elif self.token is not None and "token" in request.query_params:
            # The token moves into an HttpOnly cookie and leaves the address bar (and the browser's history).
            response = RedirectResponse(request.url.path, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
        else:
            response = await call_next(request)
        response.headers.update(HEADERS)
        return response


def create_app(settings: Settings, env: Environment, *, token: str | None = None, loopback: bool = True) -> Starlette:
    """The application for one environment; `token` is required on every request when given."""
    jinja = templates()

    def page(request: Request, name: str, **values: Any) -> HTMLResponse:
        allowed = {"token"} if token is not None else set()
        if set(request.query_params) - allowed:
            raise HTTPException(404)
        return HTMLResponse(jinja.get_template(f"{name}.html").render(env=env, active=name, **values))

    def timed(read: Callable[[], Any]) -> tuple[Any, float]:
        started = time.perf_counter()
        data = read()
        return data, time.perf_counter() - started

    def overview(request: Request) -> HTMLResponse:
        data, seconds = timed(lambda: reads.overview(settings, env))
        return page(request, "overview", data=data, seconds=seconds)

    def recovery(request: Request) -> HTMLResponse:
        data, seconds = timed(lambda: reads.recovery(settings, env))
        return page(request, "recovery", data=data, seconds=seconds)

    def database(request: Request) -> HTMLResponse:
        data, seconds = timed(lambda: reads.database(settings, env))
        return page(request, "database", data=data, seconds=seconds)

    def plan(request: Request) -> HTMLResponse:
        from cuisine_db.diagnose.explain import explain

        text_id = str(request.path_params["queryid"])
        # pg_stat_statements' queryid is a signed bigint: digits with an optional minus, nothing else.
        if not re.fullmatch(r"-?[0-9]{1,20}", text_id):
            raise HTTPException(404)
        queryid = int(text_id)
        problem = result = None
        started = time.perf_counter()
        try:
            text = reads.statement_text(settings, env, queryid)
            if text is None:
                raise HTTPException(404)
            result = explain(settings, env, text, analyze=False, timeout_ms=3000)
        except CuisineDbError as exc:
            problem = exc.message + (f" ({exc.hint})" if exc.hint else "")
        return page(request, "plan", queryid=queryid, result=result, problem=problem,
                    seconds=time.perf_counter() - started, active_page="database")

    def live(request: Request) -> HTMLResponse:
        data, seconds = timed(lambda: reads.live(settings, env))
        return page(request, "live", data=data, seconds=seconds)

    def incidents(request: Request) -> HTMLResponse:
        data, seconds = timed(lambda: reads.incidents(settings, env))
        return page(request, "incidents", data=data, seconds=seconds)

    def plain(status: int, text: str) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, exc: Exception) -> Response:
            body = jinja.get_template("error.html").render(env=env, active=None, status=status, text=text)
            return HTMLResponse(body, status_code=status)
        return handler

    return Starlette(
        debug=False,
        routes=[Route("/", overview), Route("/recovery", recovery), Route("/database", database),
                Route("/database/plan/{queryid}", plan), Route("/live", live), Route("/incidents", incidents)],
        middleware=[Middleware(_Guard, token=token, loopback=loopback)],
        exception_handlers={404: plain(404, "no such page"), 405: plain(405, "this dashboard only reads"),
                            500: plain(500, "the page failed; the server's log says why")},
    )

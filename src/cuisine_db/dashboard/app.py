"""The dashboard's web application: five read-only pages rendered on the server, behind a token off loopback.

Nothing here acts: there is no form, no POST route and no script; every page names the `make` line that acts.
Unknown pages and unexpected query parameters get a plain 404, a missing or wrong token a plain 401; no error
ever shows a traceback (Starlette's debug stays off and a last handler turns any failure into a plain 500)."""

from __future__ import annotations

import hmac
import ipaddress
import re
import threading
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

from cuisine_db import humanize
from cuisine_db.config import Environment, Settings
from cuisine_db.dashboard import reads, svg
from cuisine_db.diagnose.query_text import shown
from cuisine_db.errors import CuisineDbError

COOKIE = "cuisine_dashboard"
NOTHING = "\u2013"  # an en dash: no figure
LIVE_REFRESH_SECONDS = 5
# Viewers within this many seconds of a page's last read share it (the Live page refreshes every 5 s).
REUSE_SECONDS = 2.0
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
    return humanize.size(value, none=NOTHING)


def duration(seconds: float | None) -> str:
    return humanize.brief(seconds, none=NOTHING)


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


def since(seconds: float) -> str:
    """How long ago a shared reading was taken."""
    return "just now" if seconds < 1 else f"{duration(seconds)} ago"


def when(value: datetime | str | None) -> str:
    if value is None:
        return NOTHING
    moment = _moment(value)
    if moment is None:
        return str(value)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


class _Shared:
    """One page's latest reading, reused by viewers who ask within `reuse` seconds; one read at a time, so twenty
    viewers arriving together cost the database one read, not twenty."""

    def __init__(self, reuse: float) -> None:
        self.reuse = reuse
        self.lock = threading.Lock()
        self.value: Any = None
        self.read_at = 0.0
        self.seconds = 0.0

    def get(self, read: Callable[[], Any]) -> tuple[Any, float, float]:
        """(the reading, how long it took, how old it is)."""
        with self.lock:
            if self.value is None or time.monotonic() - self.read_at > self.reuse:
                started = time.perf_counter()
                self.value = read()
                self.seconds = time.perf_counter() - started
                self.read_at = time.monotonic()
            return self.value, self.seconds, time.monotonic() - self.read_at


def templates() -> Jinja:
    jinja = Jinja(loader=PackageLoader("cuisine_db.dashboard", "templates"), autoescape=True,
                  trim_blocks=True, lstrip_blocks=True)
    jinja.filters.update(size=size, duration=duration, ago=ago, since=since, when=when,
                         redacted=lambda text: shown(text, 4000))
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


def create_app(settings: Settings, env: Environment, *, token: str | None = None, loopback: bool = True,
               reuse_seconds: float = REUSE_SECONDS, slow_seconds: float = reads.SLOW_SECONDS,
               lag_every: float = reads.ARCHIVE_LAG_EVERY) -> Starlette:
    """The application for one environment; `token` is required on every request when given; a page read less
    than `reuse_seconds` ago is shown again instead of read anew; the slow parts (index advice, security check)
    are read at most once per `slow_seconds` for every viewer; the archive's lag is recorded at most once per
    `lag_every` seconds."""
    jinja = templates()
    slow = reads.Slow(slow_seconds)
    shared = {name: _Shared(reuse_seconds) for name in ("overview", "recovery", "database", "live", "incidents")}

    def page(request: Request, name: str, **values: Any) -> HTMLResponse:
        allowed = {"token"} if token is not None else set()
        if set(request.query_params) - allowed:
            raise HTTPException(404)
        active = "database" if name == "plan" else name
        return HTMLResponse(jinja.get_template(f"{name}.html").render(env=env, active=active, **values))

    def shown(request: Request, name: str, read: Callable[[], Any]) -> HTMLResponse:
        allowed = {"token"} if token is not None else set()
        if set(request.query_params) - allowed:
            raise HTTPException(404)  # before any read
        data, seconds, age = shared[name].get(read)
        return page(request, name, data=data, seconds=seconds, age=age)

    def overview(request: Request) -> HTMLResponse:
        return shown(request, "overview", lambda: reads.overview(settings, env, slow=slow))

    def recovery(request: Request) -> HTMLResponse:
        return shown(request, "recovery", lambda: reads.recovery(settings, env, lag_every=lag_every))

    def database(request: Request) -> HTMLResponse:
        return shown(request, "database", lambda: reads.database(settings, env, slow=slow))

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
                    seconds=time.perf_counter() - started)

    def live(request: Request) -> HTMLResponse:
        return shown(request, "live", lambda: reads.live(settings, env))

    def incidents(request: Request) -> HTMLResponse:
        return shown(request, "incidents", lambda: reads.incidents(settings, env))

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

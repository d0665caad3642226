"""The dashboard web app: one static page, a JSON snapshot and a server-sent-event stream.

Every route is a GET and nothing writes, so the app is read-only. When a token is
configured, every request must carry it as `Authorization: Bearer TOKEN`, as the
`plantpulse_dashboard_token` cookie, or as `?token=TOKEN`. The page sets the cookie
when it is opened with `?token=`. Without a token the server only answers requests whose
Host header is a loopback name, which stops a web page from reading the dashboard through
DNS rebinding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterable, Iterable
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plantpulse.dashboard.state import DashboardState

logger = logging.getLogger(__name__)

TOKEN_COOKIE = "plantpulse_dashboard_token"
LOOPBACK_HOST_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SUPPORTED_LANGUAGES = ("en", "zh-CN")

_STATIC_MEDIA_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

# Only files from this server load into the page: no CDN, no inline script.
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def preferred_language(accept_language: str | None) -> str | None:
    """Pick "en" or "zh-CN" from an Accept-Language header; None if it names neither.

    Every Chinese tag maps to Simplified Chinese, the only Chinese translation there is.
    """
    if not accept_language:
        return None

    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if quality <= 0.0:
            continue
        if primary == "zh":
            ranked.append((quality, -position, "zh-CN"))
        elif primary == "en":
            ranked.append((quality, -position, "en"))
    if not ranked:
        return None
    return max(ranked)[2]


def _host_name(host_header: str) -> str:
    """Strip the port from a Host header value, and the brackets from an IPv6 address."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _presented_tokens(scope: Scope) -> Iterable[str]:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        yield credentials.strip()

    if "cookie" in headers:
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(headers["cookie"])
        except CookieError:
            cookies = SimpleCookie()  # a malformed Cookie header carries no token
        if TOKEN_COOKIE in cookies:
            yield cookies[TOKEN_COOKIE].value

    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    yield from query.get("token", [])


class _GuardMiddleware:
    """Checks the token (or, without one, the Host header) and adds security headers."""

    def __init__(self, app: ASGIApp, token: SecretStr | None) -> None:
        self.app = app
        self._token = token.get_secret_value().encode("utf-8") if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        rejection = self._reject(scope)
        if rejection is not None:
            await rejection(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _reject(self, scope: Scope) -> Response | None:
        if self._token is not None:
            for presented in _presented_tokens(scope):
                if secrets.compare_digest(presented.encode("utf-8"), self._token):
                    return None
            return JSONResponse(
                {
                    "detail": "missing or invalid dashboard token; open the page as "
                    "/?token=TOKEN or send the header 'Authorization: Bearer TOKEN'"
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )

        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if _host_name(host) not in LOOPBACK_HOST_NAMES:
            return JSONResponse(
                {
                    "detail": f"Host {host!r} is not a loopback name; without a dashboard token "
                    "the dashboard answers only http://127.0.0.1 or http://localhost"
                },
                status_code=400,
            )
        return None


def _read_static(name: str) -> str:
    return (resources.files("plantpulse.dashboard") / "static" / name).read_text("utf-8")


def create_app(
    state: DashboardState, token: SecretStr | None = None, push_interval_s: float = 0.5
) -> FastAPI:
    """Build the app over `state`; pushes to a browser are at most one per `push_interval_s`."""
    app = FastAPI(
        title="PlantPulse dashboard",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.add_middleware(_GuardMiddleware, token=token)

    index_template = _read_static("index.html")
    static_files = {name: _read_static(name) for name in _STATIC_MEDIA_TYPES}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        language = preferred_language(request.headers.get("accept-language"))
        page = index_template.replace("%LANG%", language or "en").replace(
            "%LANG_SOURCE%", "header" if language else "none"
        )
        response = HTMLResponse(page)
        query_token = request.query_params.get("token")
        if token is not None and query_token is not None:
            # The middleware has already checked it; the cookie carries it to later requests.
            response.set_cookie(TOKEN_COOKIE, query_token, httponly=True, samesite="strict")
        return response

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in static_files:
            raise HTTPException(status_code=404, detail=f"no static file named {name!r}")
        return Response(static_files[name], media_type=_STATIC_MEDIA_TYPES[name])

    @app.get("/api/state")
    def snapshot() -> dict[str, Any]:
        """Return every machine's latest state and RUL history, and each plant's latest schedule."""
        return state.snapshot()

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        """Return the Kafka connection status and counts of records read and rejected."""
        return state.health()

    @app.get("/api/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterable[ServerSentEvent]:
        """Stream a `snapshot` event, then an `update` event whenever something changes."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake() -> None:
            # After the event loop has closed the stream is over, so a failed wake-up is moot.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(changed.set)

        unsubscribe = state.subscribe(wake)
        try:
            current = state.snapshot()
            version = current["version"]
            yield ServerSentEvent(event="snapshot", data=current, retry=2000)
            while not state.closed:
                await changed.wait()
                if state.closed:
                    break
                # Let a burst of records settle into one push.
                await asyncio.sleep(push_interval_s)
                changed.clear()
                version, update = state.updates_since(version)
                if update:
                    yield ServerSentEvent(event="update", data=update)
        finally:
            unsubscribe()

    return app

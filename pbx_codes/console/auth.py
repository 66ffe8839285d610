"""Access to the console: a token on every request off loopback, and a Host check on loopback.

The token comes in an `Authorization: Bearer` header (the CLI), or in a cookie the console sets when a page is
opened once with `?token=...` (browsers: an EventSource cannot send headers). The browser is then redirected to the
same address without the token, so it stays out of history and logs. Comparisons take constant time.
On loopback without a token, a request whose Host is not a loopback name is refused: that stops a web page on
another site from reading the feed through a DNS name rebound to 127.0.0.1.
"""
from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from yarl import URL

from pbx_codes.console.settings import ConsoleSettings, is_loopback

COOKIE = "pbx_codes_console"
QUERY = "token"
_LEADING = re.compile(r"^[/\\\s]+")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def tokens_equal(given: str | None, expected: str) -> bool:
    """Constant-time comparison (as bytes, so non-ASCII input cannot raise)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def _host_name(host_header: str) -> str:
    host = host_header.strip()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def presented_token(request: web.Request) -> str | None:
    """The token from the header or the cookie (the query is handled separately: it sets the cookie)."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.cookies.get(COOKIE)


def local_location(rel_url: URL, query: MultiDictProxy[str] | MultiDict[str]) -> str:
    """Where the login sends the browser: this console's path, never another origin.

    A browser reads `//host/...` as another host, and also `/\\host` (a backslash counts as a slash) and slashes
    with tabs or line breaks between them (it drops those), so every leading run of such characters becomes one `/`.
    """
    path = "/" + _LEADING.sub("", rel_url.raw_path)
    return f"{path}?{URL.build(query=query).raw_query_string}" if query else path


def _unauthorized(text: str) -> web.Response:
    return web.json_response({"error": text}, status=401, headers={"WWW-Authenticate": 'Bearer realm="pbx-codes"'})


def access_middleware(settings: ConsoleSettings) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware enforcing the rules above for `settings`."""

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = settings.token
        if token is None:
            if not is_loopback(_host_name(request.host)):
                return web.json_response({"error": "this console answers only to a loopback host name"}, status=403)
            return await handler(request)
        query_token = request.query.get(QUERY)
        if query_token is not None:
            if not tokens_equal(query_token, token):
                return _unauthorized("wrong token")
            if request.method != "GET":
                return _unauthorized("send the token in a header")
            query = request.url.query.copy()
            query.popall(QUERY)
            response = web.Response(status=303, headers={"Location": local_location(request.rel_url, query)})
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                                secure=request.secure)
            return response
        if not tokens_equal(presented_token(request), token):
            return _unauthorized("an access token is required: open the console once with ?token=...")
        return await handler(request)

    return check_access


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """No inline script, no framing, no sniffing: even a hostile phrase that reached the DOM could not run."""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")


__all__ = ["COOKIE", "access_middleware", "add_security_headers", "presented_token", "tokens_equal"]

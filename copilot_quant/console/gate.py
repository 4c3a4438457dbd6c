"""The console's front door (an ASGI middleware): no token, no page — 401 for every path, static files too.

A valid ``?token=`` on a GET sets the HttpOnly, SameSite=Strict cookie and redirects to the same URL without
the token, so it does not stay in the address bar or the history.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from copilot_quant.console.security import COOKIE, token_matches

__all__ = ["TokenGate"]

_UNAUTHORIZED = (
    "401: the console needs its access token. Open the URL printed when the console started "
    "(…/?token=TOKEN), or send 'Authorization: Bearer TOKEN'. The token is in the console's token file.\n"
)


class TokenGate:
    def __init__(self, app: ASGIApp, token: str, *, secure_cookie: bool = False) -> None:
        self.app = app
        self.token = token
        self.secure_cookie = secure_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if token_matches(query.get("token"), self.token) and scope["method"] == "GET":
            await self._enter(scope, query)(scope, receive, send)
            return
        if token_matches(_bearer(headers), self.token) or token_matches(_cookie(headers), self.token):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(_UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)

    def _enter(self, scope: Scope, query: dict[str, str]) -> RedirectResponse:
        query.pop("token", None)
        target = scope.get("path", "/") + (f"?{urlencode(query)}" if query else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE, self.token, httponly=True, samesite="strict", secure=self.secure_cookie, path="/"
        )
        return response


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else None


def _cookie(headers: Headers) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header is simply no token
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None

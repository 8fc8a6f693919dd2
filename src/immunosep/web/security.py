"""The web application's defences: signed session cookies, CSRF tokens, login throttling, security headers.

Sessions are Starlette's signed cookies (itsdangerous, HMAC-SHA1 over the JSON payload) with ``HttpOnly``,
``SameSite=Strict`` and, outside tests on plain HTTP, ``Secure``. The payload holds the user id, a
random CSRF token (synchronizer pattern), two timestamps (seconds since the epoch) for the idle and
absolute timeouts, and the page flashes and the pharmacist's recently opened pseudonyms (signed, not
encrypted: nothing secret goes there); the user's role and site are read from the database on every
request, so a deactivated user or a changed role takes effect at once.

Every state-changing request (POST, PUT, PATCH, DELETE) must carry the session's CSRF token, in the
``X-CSRF-Token`` header (JSON API, HTMX) or in the ``csrf_token`` form field (plain HTML forms). The one
exception is ``POST /api/login`` with a JSON body: a browser cannot send JSON cross-site without a CORS
preflight, which this application never grants, and the cookie is ``SameSite=Strict``.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "immunosep_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Paths that may be POSTed with JSON and no CSRF token (nothing to forge before a session exists).
CSRF_EXEMPT_JSON = frozenset({"/api/login"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True)
class SecuritySettings:
    """Tunable limits of the web layer (times in seconds, sizes in bytes)."""

    session_idle_timeout_s: int = 30 * 60
    session_max_age_s: int = 12 * 60 * 60
    login_max_failures: int = 5
    login_max_failures_per_address: int = 50
    login_window_s: float = 15 * 60
    login_lockout_s: float = 15 * 60
    max_body_bytes: int = 1_000_000
    secure_cookies: bool = True


def new_csrf_token() -> str:
    """A fresh, unguessable CSRF token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def ensure_csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, creating one for an anonymous session (login form) if needed."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = new_csrf_token()
        session["csrf"] = token
    return token


def start_session(session: MutableMapping[str, Any], user_id: int, now: float | None = None) -> str:
    """Replace whatever the session held by a fresh authenticated session; returns its CSRF token.

    Clearing first and issuing a new token defeats session fixation: nothing from before login survives.
    """
    now = time.time() if now is None else now
    session.clear()
    token = new_csrf_token()
    session.update({"uid": int(user_id), "csrf": token, "auth_at": now, "seen_at": now})
    return token


def session_user_id(
    session: MutableMapping[str, Any], settings: SecuritySettings, now: float | None = None
) -> int | None:
    """The authenticated user id of a live session, or None (expired sessions are cleared)."""
    uid = session.get("uid")
    if not isinstance(uid, int):
        return None
    now = time.time() if now is None else now
    auth_at = float(session.get("auth_at", 0.0))
    seen_at = float(session.get("seen_at", 0.0))
    if now - auth_at > settings.session_max_age_s or now - seen_at > settings.session_idle_timeout_s:
        session.clear()
        return None
    if now - seen_at > 60:  # refresh the idle clock at most once a minute (fewer Set-Cookie headers)
        session["seen_at"] = now
    return uid


class TooManyAttempts(Exception):
    """Login refused because of repeated failures; ``retry_after_s`` says when to try again."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed logins; try again in {int(retry_after_s) + 1} s")
        self.retry_after_s = retry_after_s


@dataclass
class LoginThrottle:
    """Counts failed logins per username and per client address in a sliding window.

    After ``max_failures`` failures within ``window_s`` seconds for the same username (any address), or
    ``max_failures_per_address`` for the same address (any username), further attempts are refused for
    ``lockout_s`` seconds without checking the password, so a guesser learns nothing and costs no argon2
    work. The address limit is higher because a hospital's staff often share one NAT address (and all
    clients share the proxy's unless ``serve --forwarded-allow-ips`` names it). Stale entries are pruned
    once there are more than ``max_entries``. The state is per process; run one worker per database or
    put a shared limiter in front.
    """

    max_failures: int = 5
    max_failures_per_address: int = 50
    window_s: float = 15 * 60
    lockout_s: float = 15 * 60
    max_entries: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _keys(self, username: str, client: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return (
            ("user:" + username.strip().lower(), self.max_failures),
            ("addr:" + client, self.max_failures_per_address),
        )

    def check(self, username: str, client: str) -> None:
        """Raise :class:`TooManyAttempts` if this username or address is locked out."""
        now = self.clock()
        with self._lock:
            for key, _ in self._keys(username, client):
                until = self._locked_until.get(key)
                if until is not None and until > now:
                    raise TooManyAttempts(until - now)

    def record_failure(self, username: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for key, limit in self._keys(username, client):
                q = self._failures.setdefault(key, deque())
                q.append(now)
                while q and q[0] < now - self.window_s:
                    q.popleft()
                if len(q) >= limit:
                    self._locked_until[key] = now + self.lockout_s
                    q.clear()
            if len(self._failures) + len(self._locked_until) > self.max_entries:
                self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget failures older than the window and lockouts that have ended."""
        for key in [k for k, q in self._failures.items() if not q or q[-1] < now - self.window_s]:
            del self._failures[key]
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]

    def record_success(self, username: str, client: str) -> None:
        """A correct password clears the username's failures (not the address's)."""
        key = self._keys(username, client)[0][0]
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)


class SecurityHeadersMiddleware:
    """Adds CSP, X-Frame-Options, X-Content-Type-Options, Referrer-Policy and no-store to every response."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if self.hsts:
                    headers["strict-transport-security"] = "max-age=31536000"
                if not is_static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CsrfMiddleware:
    """Rejects a state-changing request whose CSRF token does not match its session's (403).

    Runs inside the session middleware. A form body is read here to find ``csrf_token`` and then replayed
    unchanged to the application; bodies above ``max_body_bytes`` are refused (413).
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        declared = headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await PlainTextResponse("request body too large", status_code=413)(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.max_body_bytes:
                await PlainTextResponse("request body too large", status_code=413)(scope, receive, send)
                return

        expected = scope.get("session", {}).get("csrf")
        supplied = headers.get(CSRF_HEADER)
        if supplied is None and content_type == "application/x-www-form-urlencoded":
            values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).get(CSRF_FIELD)
            supplied = values[0] if values else None
        exempt = scope["path"] in CSRF_EXEMPT_JSON and content_type == "application/json"
        valid = (
            isinstance(expected, str)
            and isinstance(supplied, str)
            and hmac.compare_digest(expected.encode(), supplied.encode())
        )
        if not (exempt or valid):
            response = JSONResponse(
                {"detail": "missing or invalid CSRF token; reload the page and submit again"}, status_code=403
            )
            await response(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

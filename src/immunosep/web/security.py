"""The web application's defences: signed session cookies, CSRF tokens, login throttling, security headers.

Sessions are Starlette's signed cookies (itsdangerous, HMAC-SHA1 over the JSON payload) with ``HttpOnly``,
``SameSite=Strict`` and, outside tests on plain HTTP, ``Secure``, backed by a row of ``user_sessions``
that every request checks (so logout, deactivation and a password change end a session on the server; a
replayed cookie gets 401). The payload holds the user id, the session's token (the table keeps only its
SHA-256), a random CSRF token (synchronizer pattern), two timestamps (seconds since the epoch) for the idle and
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
    #: longest delay an address's failures impose (no login is ever refused for good, see LoginThrottle)
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


def start_session(session: MutableMapping[str, Any], user_id: int, sid: str, now: float | None = None) -> str:
    """Replace whatever the session held by a fresh authenticated session; returns its CSRF token.

    ``sid`` is the token of the server-side session row (``conduct.users.start_session``), which every
    request checks, so that logout and deactivation end the session on the server. Clearing first and
    issuing a new CSRF token defeats session fixation: nothing from before login survives.
    """
    now = time.time() if now is None else now
    session.clear()
    token = new_csrf_token()
    session.update({"uid": int(user_id), "sid": sid, "csrf": token, "auth_at": now, "seen_at": now})
    return token


def session_token(session: MutableMapping[str, Any]) -> str | None:
    """The server-side session token the cookie carries (None for an anonymous or pre-0004 cookie)."""
    sid = session.get("sid")
    return sid if isinstance(sid, str) and sid else None


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
    """Login refused for now because of repeated failures; ``retry_after_s`` says when to try again."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed logins; try again in {int(retry_after_s) + 1} s")
        self.retry_after_s = retry_after_s


@dataclass
class _Counter:
    """Failures of one key (a username or an address) and the attempts being checked now."""

    failures: int = 0
    last_failure: float = 0.0
    in_flight: int = 0


@dataclass(frozen=True)
class LoginAttempt:
    """An admitted login attempt (:meth:`LoginThrottle.admit`); report its outcome exactly once."""

    keys: tuple[str, ...]
    account_key: str
    client: str


@dataclass
class LoginThrottle:
    """Slows password guessing with growing delays, never with a lockout a stranger could trigger.

    Two counters: per username (any address) and per client address (any username). Each allows its
    first ``max_failures`` (username) or ``max_failures_per_address`` (address) failures freely; after
    them one attempt at a time is admitted, and only once a delay has passed since the last failure:
    ``base_delay_s`` doubled for each further failure, at most ``max_account_delay_s`` (username) or
    ``lockout_s`` (address). A correct password after the delay logs in and clears the username's count.
    No count ever refuses a login for good, so knowing a username is not enough to keep its owner out:

    - the username's delay is short (a minute at most), and does not apply at all from an address that
      logged in to that account successfully in the last ``window_s`` (the ward's own terminals), so a
      guesser elsewhere cannot slow its owner down;
    - an address's counter slows a guesser behind one address (a hospital's staff often share one NAT
      address, hence the higher allowance), and a correct password still passes after its delay.

    Counting is exact under concurrency: :meth:`admit` reserves the attempt under a lock before the
    password is checked, so 40 simultaneous wrong guesses check at most ``max_failures`` passwords (the
    rest get :class:`TooManyAttempts` without argon2 work). Failures are forgotten after ``window_s``
    quiet seconds; stale entries are pruned beyond ``max_entries``. The state is per process: run one
    worker per database or put a shared limiter in front.
    """

    max_failures: int = 5
    max_failures_per_address: int = 50
    window_s: float = 15 * 60
    lockout_s: float = 15 * 60
    max_account_delay_s: float = 60.0
    base_delay_s: float = 1.0
    max_entries: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _counters: dict[str, _Counter] = field(default_factory=dict)
    _trusted: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _limits(self, key: str) -> tuple[int, float]:
        if key.startswith("user:"):
            return self.max_failures, self.max_account_delay_s
        return self.max_failures_per_address, self.lockout_s

    def delay_after(self, key: str, failures: int) -> float:
        """Seconds after the last failure before the next attempt of ``key`` is admitted."""
        limit, cap = self._limits(key)
        if failures < limit:
            return 0.0
        return float(min(cap, self.base_delay_s * 2.0 ** min(failures - limit, 64)))

    def _counter(self, key: str, now: float) -> _Counter:
        c = self._counters.get(key)
        if c is None:
            c = self._counters[key] = _Counter()
        elif c.in_flight == 0 and c.failures and now - c.last_failure > self.window_s:
            c.failures = 0  # quiet for a whole window: forgotten
        return c

    def admit(self, username: str, client: str, *, trust_address: bool = True) -> LoginAttempt:
        """Reserve one attempt, or raise :class:`TooManyAttempts` (the password is then not checked).

        ``trust_address=False`` counts the username's failures even from an address trusted for it: an
        electronic signature is made in a session already open, so its guesser sits at the owner's own
        terminal (``web.signing``).
        """
        name = username.strip().casefold()
        account_key, address_key = "user:" + name, "addr:" + client
        now = self.clock()
        with self._lock:
            trusted = trust_address and self._trusted.get((name, client), -1e300) >= now - self.window_s
            keys = (address_key,) if trusted else (account_key, address_key)
            wait = 0.0
            for key in keys:
                c = self._counter(key, now)
                limit, _ = self._limits(key)
                if c.failures + c.in_flight < limit:
                    continue
                if c.in_flight:
                    wait = max(wait, self.base_delay_s)
                else:
                    wait = max(wait, c.last_failure + self.delay_after(key, c.failures) - now)
            if wait > 0:
                raise TooManyAttempts(wait)
            for key in keys:
                self._counters[key].in_flight += 1
            if len(self._counters) + len(self._trusted) > self.max_entries:
                self._prune(now)
        return LoginAttempt(keys, account_key, client)

    def _settle(self, attempt: LoginAttempt) -> None:
        for key in attempt.keys:
            c = self._counters.get(key)
            if c is not None and c.in_flight > 0:
                c.in_flight -= 1

    def failed(self, attempt: LoginAttempt) -> None:
        """The attempt's password was wrong: count it against its keys."""
        now = self.clock()
        with self._lock:
            self._settle(attempt)
            for key in attempt.keys:
                c = self._counter(key, now)
                c.failures += 1
                c.last_failure = now

    def succeeded(self, attempt: LoginAttempt) -> None:
        """A correct password: the username's failures are cleared (not the address's), the address trusted."""
        now = self.clock()
        with self._lock:
            self._settle(attempt)
            c = self._counters.get(attempt.account_key)
            if c is not None:
                c.failures = 0
            self._trusted[(attempt.account_key[5:], attempt.client)] = now

    def abandoned(self, attempt: LoginAttempt) -> None:
        """The attempt ended without an answer (an error): release it uncounted."""
        with self._lock:
            self._settle(attempt)

    def _prune(self, now: float) -> None:
        """Forget counters quiet for a window and trusted addresses older than one."""
        for key in [
            k
            for k, c in self._counters.items()
            if c.in_flight == 0 and (not c.failures or now - c.last_failure > self.window_s)
        ]:
            del self._counters[key]
        for pair in [p for p, at in self._trusted.items() if at < now - self.window_s]:
            del self._trusted[pair]


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

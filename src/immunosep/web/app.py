"""The FastAPI application: JSON API under ``/api`` and server-rendered pages, over one trial database.

``create_app(db_url)`` wires the engine, the security middleware (signed session cookie, CSRF, security
headers) and the routers. Routers call the ``conduct`` services (and ``clinical`` for the bedside
calculators) and hold no trial logic; role, site and blinding rules are enforced inside the services.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from starlette.datastructures import URL
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from immunosep.conduct.meddra import demo_meddra, load_meddra
from immunosep.errors import AccessDenied, Conflict, ImmunoSepError
from immunosep.store.db import make_engine
from immunosep.web import api, pages
from immunosep.web.deps import NotAuthenticated, group_stats, refuse_nul
from immunosep.web.security import (
    SESSION_COOKIE,
    CsrfMiddleware,
    LoginThrottle,
    SecurityHeadersMiddleware,
    SecuritySettings,
    TooManyAttempts,
)

WEB_DIR = Path(__file__).parent
SECRET_KEY_ENV = "IMMUNOSEP_SECRET_KEY"  # noqa: S105 (the environment variable's name, not a secret)
#: Writing transactions in flight at once per process (see web.deps.get_db). Every writer serializes on the
#: audit chain (SQLite's write lock, PostgreSQL's advisory lock), so a second one would only wait for the lock
#: in a worker thread, which readers then lack.
DB_WRITE_CONCURRENCY = 1
#: Worker threads per server process for the handlers' blocking work (anyio's default is 40). Python runs one
#: thread at a time, so more threads only queue for the interpreter and stretch every transaction, the locks of
#: a writer included: at 200 req/s (bench_web.py, 2 workers, SQLite) p99 was 290-440 ms with 2 and 1.1-1.6 s with 40.
#: With one writer at a time (DB_WRITE_CONCURRENCY), one thread is always left for readers.
WORKER_THREADS = 2
log = logging.getLogger(__name__)


@asynccontextmanager
async def _limit_worker_threads(app: FastAPI) -> AsyncIterator[None]:
    """Set this event loop's worker-thread limit to ``app.state.worker_threads`` while the app runs; at its
    end, log how the commit groups went (``web.deps.CommitGroups``: writes, groups, the largest)."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    before = limiter.total_tokens
    limiter.total_tokens = app.state.worker_threads
    try:
        yield
    finally:
        limiter.total_tokens = before
        stats = group_stats(app)
        if stats is not None and stats.members:
            log.info(
                "commit groups: %d writes in %d groups (%.2f a group, largest %d); %d failed with their commit",
                stats.members,
                stats.groups,
                stats.members / max(stats.groups, 1),
                stats.largest,
                stats.failed_commits,
            )


def _templates() -> Jinja2Templates:
    """The pages' templates, with the ``days`` filter and a ``url_for`` that makes each URL once.

    Templates are read once per process (they ship with the package): Jinja's default checks each one's
    file on every use, 3 ``stat`` calls (dashboard, layout, rows) and 0.05 ms of every dashboard.
    """
    loader = FileSystemLoader(WEB_DIR / "templates")
    templates = Jinja2Templates(
        env=Environment(loader=loader, autoescape=select_autoescape(), auto_reload=False)
    )
    # ``days``: study days as "1, 2, 3" (Jinja's ``join`` filter costs the dashboard of 667 patients 3 ms).
    templates.env.filters["days"] = _days_text
    templates.env.globals["url_for"] = _url_for_once()
    return templates


def _days_text(days: Iterable[int]) -> str:
    return ", ".join(map(str, days))


def _url_for_once() -> Callable[..., URL]:
    """Starlette's ``url_for`` of the templates, each URL made once per router, base URL and arguments.

    Starlette's searches the routes for the name each time (raising and catching a ``NoMatchFound`` per
    route before the static files' mount): the layout's four asset URLs cost every page 45 µs.
    """
    made: dict[tuple[Any, ...], tuple[Any, URL]] = {}  # the router is kept: its id names no other

    @pass_context
    def url_for(context: Mapping[str, Any], name: str, /, **path_params: Any) -> URL:
        request: Request = context["request"]
        router = request.scope.get("router") or request.scope.get("app")
        key = (id(router), str(request.base_url), name, tuple(sorted(path_params.items())))
        entry = made.get(key)
        if entry is None or entry[0] is not router:
            entry = (router, request.url_for(name, **path_params))
            if len(made) >= 1024:  # a base URL comes from the Host header: keep a bounded few
                made.clear()
            made[key] = entry
        return entry[1]

    return url_for


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def create_app(
    db_url: str,
    *,
    secret_key: str | None = None,
    secure_cookies: bool = True,
    settings: SecuritySettings | None = None,
    meddra_dir: str | Path | None = None,
    worker_threads: int = WORKER_THREADS,
) -> FastAPI:
    """The web application for the trial database at ``db_url`` (which must already be initialised).

    ``secret_key`` signs the session cookies; without one, ``$IMMUNOSEP_SECRET_KEY`` is used, else a random
    key (sessions then end when the process restarts). ``secure_cookies=False`` drops the cookie's
    ``Secure`` flag, for plain-HTTP tests and local development only. ``meddra_dir`` is a MedDRA ASCII
    release folder for adverse event coding (default: the built-in demo term set). ``worker_threads``
    bounds the threads that run handlers and database work (see :data:`WORKER_THREADS`).
    """
    if worker_threads < 1:
        raise ImmunoSepError("worker_threads must be at least 1")
    settings = settings or SecuritySettings(secure_cookies=secure_cookies)
    if settings.secure_cookies != secure_cookies:
        settings = SecuritySettings(**{**settings.__dict__, "secure_cookies": secure_cookies})
    key = secret_key or os.environ.get(SECRET_KEY_ENV) or secrets.token_urlsafe(48)
    if len(key) < 32:
        raise ImmunoSepError("the session secret key must be at least 32 characters long")

    app = FastAPI(
        lifespan=_limit_worker_threads,
        title="ImmunoSep trial platform",
        version="1",
        description="JSON API of the ImmunoSep trial platform. Log in with POST /api/login; send the "
        "returned csrf_token in the X-CSRF-Token header with every POST, PUT, PATCH and DELETE.",
        docs_url=None,  # the Swagger UI loads scripts from a CDN; the schema stays at /openapi.json
        redoc_url=None,
    )
    app.state.engine = make_engine(db_url)
    # Writers queue on the event loop (web.deps.get_db), holding no thread, and leave a thread to readers.
    app.state.db_write_concurrency = DB_WRITE_CONCURRENCY
    app.state.worker_threads = worker_threads
    app.state.settings = settings
    app.state.throttle = LoginThrottle(
        max_failures=settings.login_max_failures,
        max_failures_per_address=settings.login_max_failures_per_address,
        window_s=settings.login_window_s,
        lockout_s=settings.login_lockout_s,
    )
    app.state.meddra = load_meddra(meddra_dir) if meddra_dir is not None else demo_meddra()
    app.state.templates = _templates()

    # Starlette runs the middleware added last first: headers, then session, then CSRF, then the app.
    app.add_middleware(CsrfMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(
        SessionMiddleware,
        secret_key=key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        same_site="strict",
        https_only=secure_cookies,
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=secure_cookies)

    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    # Starlette tries the routes in order, a regex match for each: the busiest routers go first (the daily
    # CRF's and the site dashboard's; GET /dashboard was the 45th route, 0.3 ms of matching per request).
    hot = (api.clinical_data.router, pages.clinical_data.router, pages.patients.router)
    for router in hot + tuple(r for r in api.ROUTERS + pages.ROUTERS if r not in hot):
        if router in api.ROUTERS:
            app.include_router(router, prefix=api.PREFIX, dependencies=[Depends(refuse_nul)])
        else:
            app.include_router(router, include_in_schema=False, dependencies=[Depends(refuse_nul)])
    _install_error_handlers(app)
    return app


#: Environment of the worker processes of ``immunosep serve --workers N`` (see :func:`app_from_environment`).
SERVE_ENV = {
    "db": "IMMUNOSEP_SERVE_DB",
    "meddra": "IMMUNOSEP_SERVE_MEDDRA",
    "secure": "IMMUNOSEP_SERVE_SECURE",
    "threads": "IMMUNOSEP_SERVE_THREADS",
}


def app_from_environment() -> FastAPI:
    """The application of one worker process of ``serve --workers N`` (uvicorn's factory).

    Each worker reads the database URL, the MedDRA folder and the cookie policy from :data:`SERVE_ENV`,
    and the shared session key from ``$IMMUNOSEP_SECRET_KEY`` (set by ``serve``), so a session cookie
    signed by one worker is valid in every other.
    """
    url = os.environ.get(SERVE_ENV["db"])
    if not url or not os.environ.get(SECRET_KEY_ENV):
        raise ImmunoSepError(
            f"a worker needs ${SERVE_ENV['db']} and ${SECRET_KEY_ENV}; start it with `immunosep serve --workers N`"
        )
    app = create_app(
        url,
        secure_cookies=os.environ.get(SERVE_ENV["secure"], "1") != "0",
        meddra_dir=os.environ.get(SERVE_ENV["meddra"]) or None,
        worker_threads=int(os.environ.get(SERVE_ENV["threads"]) or WORKER_THREADS),
    )
    freeze_for_serving()
    return app


def freeze_for_serving() -> None:
    """Take what a server process has made before serving (modules, the app, the protocol, the MedDRA
    terms: about 320,000 objects) out of the cyclic garbage collector's reach, for good (``gc.freeze``).

    Its full collections walk every tracked object, 140 ms here, and under load they came every few seconds
    with the event loop stopped meanwhile: the worst latencies of ``bench_web.py`` (p99 at 500 req/s 207 ms,
    78 ms with the freeze). Only for a process that serves until it ends: frozen objects are never freed.
    """
    gc.collect()
    gc.freeze()


def _install_error_handlers(app: FastAPI) -> None:
    templates: Jinja2Templates = app.state.templates

    def _page(request: Request, status: int, heading: str, message: str) -> Response:
        from immunosep.web.pages._render import base_context

        return templates.TemplateResponse(
            request,
            "error.html",
            {**base_context(request, None), "heading": heading, "message": message},
            status_code=status,
        )

    @app.exception_handler(NotAuthenticated)
    async def _not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "not logged in"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(TooManyAttempts)
    async def _too_many(request: Request, exc: TooManyAttempts) -> Response:
        retry = {"Retry-After": str(int(exc.retry_after_s) + 1)}
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=429, headers=retry)
        return _page(request, 429, "Too many attempts", str(exc))

    @app.exception_handler(AccessDenied)
    async def _access_denied(request: Request, exc: AccessDenied) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=403)
        return _page(request, 403, "Not allowed", exc.message)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=409)
        return _page(request, 409, "Already done", exc.message)

    @app.exception_handler(ImmunoSepError)
    async def _user_error(request: Request, exc: ImmunoSepError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=422)
        return _page(request, 422, "Cannot do that", exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "detail": e.get("msg", "")}
            for e in exc.errors()
        ]
        if _is_api(request):
            return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)
        return _page(
            request, 422, "Invalid request", "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or exc.status_code == 405:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return _page(
            request, exc.status_code, "Not found" if exc.status_code == 404 else "Error", str(exc.detail)
        )

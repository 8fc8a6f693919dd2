"""``immunosep serve``: the web application (JSON API and pages) over one trial database."""

from __future__ import annotations

from typing import Any

import typer

from immunosep.commands._output import err_console
from immunosep.errors import ImmunoSepError


def serve(
    db: str = typer.Option(
        ..., "--db", help="Trial database URL (sqlite:///trial.db or postgresql+psycopg://...)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    meddra: str | None = typer.Option(
        None,
        "--meddra",
        help="Folder of the official MedDRA ASCII release (soc.asc, pt.asc, llt.asc, mdhier.asc) for AE coding; "
        "default: the built-in demo term set.",
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        "--forwarded-allow-ips",
        help="Addresses of the TLS proxy in front, whose X-Forwarded-For is trusted (so login throttling "
        "sees each client, not the proxy). Default: trust none.",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=32,
        help="Server processes (one per core uses them all); each new connection goes to the next one in "
        "turn. The login throttle counts per process.",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        max=64,
        help="Worker threads per process for handlers and database work (default 2; more only queue for "
        "Python's interpreter lock and hold a writer's locks longer).",
    ),
    insecure_cookies: bool = typer.Option(
        False,
        "--insecure-cookies",
        help="Send the session cookie over plain HTTP too (local development only; put TLS in front otherwise).",
    ),
) -> None:
    """Serve the trial's web application: pages for every role and the JSON API (/openapi.json).

    The session cookie is signed with $IMMUNOSEP_SECRET_KEY (at least 32 characters); without it a random key
    is used and everyone must log in again after a restart.
    """
    import os
    import secrets

    import uvicorn

    from immunosep.web.app import SECRET_KEY_ENV, SERVE_ENV, WORKER_THREADS, create_app, freeze_for_serving

    threads = threads or WORKER_THREADS

    if not os.environ.get(SECRET_KEY_ENV):
        err_console.print(f"note: ${SECRET_KEY_ENV} is not set; sessions end when the server restarts")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "proxy_headers": forwarded_allow_ips is not None,
        "forwarded_allow_ips": forwarded_allow_ips,
        "server_header": False,
        "log_level": "info",
        "log_config": _log_config(),
    }
    app = create_app(
        db, secure_cookies=not insecure_cookies, meddra_dir=meddra, worker_threads=threads
    )  # checks the settings now
    _check_database(app.state.engine)
    if workers == 1:
        freeze_for_serving()
        uvicorn.run(app, **options)
        return
    app.state.engine.dispose()
    # Worker processes build their own app from the environment; they must share the session key.
    os.environ.setdefault(SECRET_KEY_ENV, secrets.token_urlsafe(48))
    os.environ[SERVE_ENV["db"]] = db
    os.environ[SERVE_ENV["secure"]] = "0" if insecure_cookies else "1"
    os.environ[SERVE_ENV["meddra"]] = meddra or ""
    os.environ[SERVE_ENV["threads"]] = str(threads)
    from immunosep.web import dealer

    if not dealer.AVAILABLE:  # no SCM_RIGHTS (Windows): uvicorn's workers on one shared listening socket
        uvicorn.run(dealer.APP, factory=True, workers=workers, **options)
        return
    raise typer.Exit(dealer.serve(options, host, port, workers))


def _log_config() -> dict[str, Any]:
    """The logging set-up of uvicorn, with the application's own loggers (``immunosep.*``) on its console at INFO."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["immunosep"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _check_database(engine: Any) -> None:
    """Open the database and read its trial before listening, so a wrong --db fails now, not per request.

    A connection or schema error propagates to :func:`immunosep.cli.main`, which names it in one line.
    """
    from sqlalchemy import select

    from immunosep.store.db import session_scope
    from immunosep.store.models import Trial

    with session_scope(engine, read_only=True) as session:
        if session.execute(select(Trial.id).limit(1)).first() is None:
            raise ImmunoSepError(
                f"the database {engine.url.render_as_string(hide_password=True)} holds no trial; run `immunosep db init`"
            )


def register(app: typer.Typer) -> None:
    """Register ``serve`` on the main app."""
    app.command("serve")(serve)

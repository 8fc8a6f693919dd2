"""The ``immunosep`` command line: one Typer app, each group of commands in ``immunosep.commands``.

Errors a user can cause (:class:`~immunosep.errors.ImmunoSepError`) print one line on stderr and exit
with code 2, never a traceback. So do the database errors a wrong ``--db`` causes (no server, no file, a
file that is not a database, no schema): :func:`database_error` names them here, in one place, for every
command; other database errors (a constraint, a data error) are bugs and keep their traceback. A file
system error on a named path (an output folder that is a file, no permission) is one line too.
"""

from __future__ import annotations

import re
import sys

import typer

from immunosep.commands import analyse, bedside, demo, design, protocol, simulate, stats, trial, web
from immunosep.errors import ImmunoSepError

app = typer.Typer(
    name="immunosep",
    help="Biomarker-guided precision-immunotherapy trials in sepsis, from bedside to publication.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain help text: Typer's rich help boxes import rich.markdown and friends, a third of a second
    # before the first line appears (issue 21: `immunosep --help` in under 0.3 s)
    rich_markup_mode=None,
)

for _module in (protocol, bedside, stats, design, trial, simulate, analyse, web, demo):
    _module.register(app)


# missing tables: the database exists but holds no trial (SQLite reports it as OperationalError)
_UNDEFINED_TABLE = ("UndefinedTable",)


def _db_url(argv: list[str]) -> str | None:
    """The ``--db`` URL of the command line, its password masked."""
    url = None
    for i, arg in enumerate(argv):
        if arg == "--db" and i + 1 < len(argv):
            url = argv[i + 1]
        elif arg.startswith("--db="):
            url = arg.split("=", 1)[1]
    if url is None:
        return None
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return url


def database_error(exc: BaseException, argv: list[str]) -> ImmunoSepError | None:
    """The user's message for a database that cannot be opened, or None if ``exc`` is not one.

    Connection and file problems (OperationalError: no server, refused, no such file, no such table on
    SQLite, locked), a file that is not a database (the bare DatabaseError of SQLite), an unusable URL
    (ArgumentError) and a missing table on PostgreSQL (ProgrammingError from UndefinedTable). Integrity,
    data and other programming errors are not the user's to fix and are not caught.
    """
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.ProgrammingError):
        if type(exc.orig).__name__ not in _UNDEFINED_TABLE:
            return None
    elif (
        not isinstance(exc, sa_exc.OperationalError | sa_exc.ArgumentError)
        and type(exc) is not sa_exc.DatabaseError
    ):
        return None
    orig = getattr(exc, "orig", None) or exc
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    url = _db_url(argv)
    where = f" {url}" if url else ""
    return ImmunoSepError(
        f"cannot open the database{where}: {reason}; check the URL or run `immunosep db init`"
    )


def _one_line(message: str) -> str:
    return re.sub(r"\s*\n\s*", " ", message.strip())


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, standalone_mode=True)
    except ImmunoSepError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if exc.filename is None:  # not about a path the user gave: a bug or the system, keep the traceback
            raise
        reason = exc.strerror or type(exc).__name__
        print(f"error: {exc.filename}: {reason}; check the path", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        # SQLAlchemy is imported by the commands that open a database, never by `--help` or the bedside
        # commands: if it is not loaded, the error cannot be one of its own
        sa_exc_module = sys.modules.get("sqlalchemy.exc")
        if sa_exc_module is None or not isinstance(exc, sa_exc_module.SQLAlchemyError):
            raise
        error = database_error(exc, args)
        if error is None:
            raise
        print(f"error: {_one_line(str(error))}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()

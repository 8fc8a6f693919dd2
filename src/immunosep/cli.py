"""The ``immunosep`` command line: one Typer app, each group of commands in ``immunosep.commands``.

Errors a user can cause (:class:`~immunosep.errors.ImmunoSepError`) print one line on stderr and exit
with code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from immunosep.commands import analyse, bedside, demo, protocol, simulate, stats, trial, web
from immunosep.errors import ImmunoSepError

app = typer.Typer(
    name="immunosep",
    help="Biomarker-guided precision-immunotherapy trials in sepsis, from bedside to publication.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (protocol, bedside, stats, trial, simulate, analyse, web, demo):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except ImmunoSepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()

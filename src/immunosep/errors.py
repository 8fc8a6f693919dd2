"""The one exception type a user can cause.

Every error that bad input, a forbidden action or a protocol violation can raise is an
``ImmunoSepError`` whose message says what to fix. The CLI prints it on one line, without a
traceback, and exits with code 2; the web layer turns it into a 4xx response.
"""

from __future__ import annotations


class ImmunoSepError(ValueError):
    """A problem the user can fix: bad input, a forbidden action, a protocol violation."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class AccessDenied(ImmunoSepError):
    """The caller's role or site does not allow this action or this record."""


class Conflict(ImmunoSepError):
    """The input repeats a record already stored (e.g. a dose logged twice); the web answers 409."""

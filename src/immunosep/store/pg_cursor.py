"""A psycopg cursor whose ``description`` describes the columns only when one is asked for.

psycopg builds ``cursor.description`` afresh at every access, a ``Column`` per column (its name decoded,
its type looked up): 55 µs of CPU for a 17-column row here, as much as the round trip that fetched it.
SQLAlchemy asks for it after every statement, but for a statement whose compiled form it has run before
(every statement of a serving process after its first requests) it only asks whether there is one: it
keeps the result's layout with the compiled statement. This cursor answers that question from the
result's column count and builds the ``Column`` objects, the same ones psycopg would, on first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import psycopg
from psycopg import Column, pq

_ROWS = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE, pq.ExecStatus.TUPLES_CHUNK)


class _ResultOf:
    """What ``Column`` reads of a cursor, as it was when one result came (the cursor may run on)."""

    __slots__ = ("_encoding", "adapters", "pgresult")

    def __init__(self, cursor: psycopg.Cursor[Any], pgresult: pq.abc.PGresult) -> None:
        self.pgresult = pgresult
        self._encoding = cursor._encoding
        self.adapters = cursor.adapters


class Description(Sequence[Column]):
    """``cursor.description`` of one result: its length at once, its ``Column`` objects when first used."""

    __slots__ = ("_columns", "_cursor", "_pgresult")

    def __init__(self, cursor: psycopg.Cursor[Any], pgresult: pq.abc.PGresult) -> None:
        self._cursor: psycopg.Cursor[Any] | None = cursor
        self._pgresult = pgresult
        self._columns: list[Column] | None = None

    def _built(self) -> list[Column]:
        if self._columns is None:
            assert self._cursor is not None
            at = _ResultOf(self._cursor, self._pgresult)
            self._columns = [Column(at, i) for i in range(self._pgresult.nfields)]  # type: ignore[arg-type]
            self._cursor = None  # nothing more to read from it
        return self._columns

    def __len__(self) -> int:
        """The result's column count, without describing the columns."""
        return self._pgresult.nfields

    @overload
    def __getitem__(self, index: int) -> Column: ...
    @overload
    def __getitem__(self, index: slice) -> list[Column]: ...
    def __getitem__(self, index: int | slice) -> Column | list[Column]:
        """A column (or a slice of them), as psycopg's list would give it."""
        return self._built()[index]

    def __iter__(self) -> Iterator[Column]:
        """The columns in order."""
        return iter(self._built())

    def __repr__(self) -> str:
        """The list's own repr, as psycopg shows it."""
        return repr(self._built())


class DescribedOnDemandCursor(psycopg.Cursor[Any]):
    """psycopg's client cursor, with :class:`Description` for ``description`` (same content, built lazily)."""

    @property
    def description(self) -> Description | None:  # type: ignore[override]
        res = self.pgresult
        if res is not None and (res.nfields or res.status in _ROWS):
            return Description(self, res)
        return None


def describe_on_demand(dbapi_connection: Any, _record: Any) -> None:
    """Engine ``connect`` hook: the connection's cursors are :class:`DescribedOnDemandCursor`."""
    if dbapi_connection.cursor_factory is psycopg.Cursor:  # not one its user chose
        dbapi_connection.cursor_factory = DescribedOnDemandCursor

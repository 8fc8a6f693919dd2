"""Bounds the database puts on stored values, the same on both backends.

PostgreSQL's ``integer`` columns hold a signed 32-bit value and SQLite's up to 2^63 - 1; every integer the
platform accepts is kept within the smaller range, so both backends refuse (and store) the same values.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: Largest value of a PostgreSQL ``integer`` column.
INT32_MAX = 2**31 - 1

#: An integer input that fits an ``integer`` column; its clinical range is checked where it is used.
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]

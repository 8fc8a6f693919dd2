"""Bounds of the API's numbers and text, so bad input is a 422 before it reaches the database.

Integers are kept within a signed 32-bit column (PostgreSQL ``integer``; SQLite would take up to 2^63 - 1),
so both backends refuse the same values; the protocol's own ranges (study days, hours) are checked by the
services, which know the trial's protocol. Text lengths are those of the columns in ``store.models``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

from immunosep.store.bounds import INT32_MAX

#: A row id in a URL (query, approval).
PathId = Annotated[int, Path(ge=1, le=INT32_MAX)]
#: A study day in a URL; the protocol's range is checked by the service.
PathDay = Annotated[int, Path(ge=1, le=INT32_MAX)]
#: A study day in a body; the protocol's range is checked by the service.
Day = Annotated[int, Field(ge=1, le=INT32_MAX)]
#: An hour of a study day, 0-23.
Hour = Annotated[int, Field(ge=0, le=23)]
#: A row id in a body.
RowId = Annotated[int, Field(ge=1, le=INT32_MAX)]

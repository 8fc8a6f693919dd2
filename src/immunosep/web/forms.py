"""Reading HTML form values into typed values, collecting one message per field for the template."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.datastructures import FormData

from immunosep.errors import ImmunoSepError


class FormErrors(dict[str, str]):
    """Field name -> message shown next to the field; empty when the form is valid."""

    def add(self, field: str | None, message: str) -> None:
        self.setdefault(field or "_form", message)

    def add_error(self, exc: ImmunoSepError, fields: Mapping[str, str] | None = None) -> None:
        """File a service error under its field (renamed through ``fields``) or under the form."""
        name = exc.field
        if name is not None and fields is not None:
            name = fields.get(name, name)
        self.add(name, exc.message)


async def form_data(request: Request) -> FormData:
    """The submitted form, as a dependency of plain ``def`` handlers.

    The body is read here, on the event loop; the handler itself (database work, password hashing) runs
    in a worker thread, so a blocking call never stalls the server.
    """
    return await request.form()


def text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def number(
    form: Mapping[str, Any], name: str, errors: FormErrors, *, required: bool = False, integer: bool = False
) -> float | None:
    """A finite number from the form, or None when blank; a message goes to ``errors`` otherwise."""
    raw = text(form, name).replace(",", ".")
    if not raw:
        if required:
            errors.add(name, "required")
        return None
    try:
        value = float(raw)
    except ValueError:
        errors.add(name, f"{raw!r} is not a number")
        return None
    if not math.isfinite(value):
        errors.add(name, "must be a finite number")
        return None
    if integer:
        if value != int(value):
            errors.add(name, "must be a whole number")
            return None
        return int(value)
    return value


def checked(form: Mapping[str, Any], name: str) -> bool:
    return text(form, name).lower() in {"on", "true", "1", "yes"}

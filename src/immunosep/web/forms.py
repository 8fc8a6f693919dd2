"""Reading HTML form values into typed values, collecting one message per field for the template."""

from __future__ import annotations

import collections.abc
import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from fastapi import Request
from fastapi.datastructures import FormData
from pydantic import ValidationError

from immunosep.errors import ImmunoSepError

M = TypeVar("M")


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


def read_model(model: type[M], form: Mapping[str, Any], errors: FormErrors, **given: Any) -> M | None:
    """The input model ``model`` (a dataclass of ``conduct``) from a form's values, or None with a
    message per field in ``errors``.

    The model is the one declaration of what a form takes: each field is read by its annotation (a
    number, a whole number, a ticked box, a date-time, a list, text); a blank field is not given, so the
    model's default applies, and a field without a default is required. ``given`` sets fields that do
    not come from the form. Ranges and rules are the service's, checked when the model is used.
    """
    hints = get_type_hints(model)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(model):  # type: ignore[arg-type]
        if f.name in given:
            continue
        kind = hints[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        value = _read_field(form, f.name, kind, errors, required=required)
        if value is not None:
            values[f.name] = value
    if errors:
        return None
    try:
        return model(**values, **given)
    except ValidationError as exc:  # a type the readers do not know: the message of the model's check
        for problem in exc.errors():
            errors.add(str(problem["loc"][0]) if problem["loc"] else None, problem["msg"])
        return None


def _read_field(form: Mapping[str, Any], name: str, kind: Any, errors: FormErrors, *, required: bool) -> Any:
    """One field of a form by its annotation (``X | None`` is read as ``X``, blank = None)."""
    args = [a for a in get_args(kind) if a is not type(None)]
    if get_origin(kind) in (Union, UnionType) and len(args) == 1:
        kind = args[0]
    if kind is bool:
        return checked(form, name)
    if kind in (int, float):
        return number(form, name, errors, required=required, integer=kind is int)
    if get_origin(kind) in (list, tuple, Sequence, collections.abc.Sequence):
        items = form.get(name, [])
        return tuple([items] if isinstance(items, str) else items)
    raw = text(form, name)
    if not raw:
        if required:
            errors.add(name, "required")
        return None
    if kind is datetime:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            errors.add(name, "give date and time as YYYY-MM-DDTHH:MM (UTC)")
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return raw

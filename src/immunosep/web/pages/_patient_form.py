"""What the investigator pages about one patient share: the submitted form as a dict, and the page that
shows a form with its values as typed and a message next to each refused field."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.datastructures import FormData
from fastapi.responses import Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.web.forms import FormErrors
from immunosep.web.pages._render import render


def form_values(form: FormData) -> dict[str, Any]:
    """The form as a dict: a field sent more than once (and ``exclusions`` always) becomes a list."""
    values: dict[str, Any] = {}
    for key in form:
        items = form.getlist(key)
        values[key] = items if len(items) > 1 or key == "exclusions" else items[0]
    return values


def form_page(
    request: Request,
    actor: Actor,
    db: Session,
    template: str,
    title: str,
    pseudonym: str,
    values: dict[str, Any],
    errors: FormErrors,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A form about one patient: the values as typed and, after a refusal, a message next to each field."""
    return render(
        request,
        template,
        actor,
        db,
        status_code=status_code,
        title=title,
        pseudonym=pseudonym,
        v=values,
        errors=errors,
        **context,
    )

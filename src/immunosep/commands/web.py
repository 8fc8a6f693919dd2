"""Commands of this group are registered here (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Register this group's commands on the main app."""

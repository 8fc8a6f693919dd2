"""Output helpers shared by the commands: JSON for machines, rich tables for people."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

# emoji=False: no ":name:" codes in our texts, so rich need not load its emoji table (about 0.02 s of a
# bedside command's start, issue 21), and a value that happens to look like one is printed as typed
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump())
    return value


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (NaN and inf become null)."""
    print(json.dumps(_jsonable(data), indent=2, ensure_ascii=False))


def print_table(title: str, rows: Iterable[Sequence[Any]], columns: Sequence[str] = ("", "value")) -> None:
    """Print a small table for people."""
    table = Table(title=title, title_justify="left", show_header=bool(any(columns)))
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """Rich progress bars, one per stage: yields ``update(stage, done, total)`` for long work."""
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=console, transient=False) as progress:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield update

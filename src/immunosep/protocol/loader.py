"""Reading a protocol TOML file into a validated :class:`Protocol`.

A protocol file may extend another and give only what it changes::

    extends = "immunosep"          # the bundled protocol; or a path relative to this file

    [design]
    type = "group-sequential"

Resolution (:func:`protocol_data`), before the schema validates anything: the base is read (and resolved:
it may extend another file in turn), then the file's tables are deep-merged into it. A table (``[design]``,
``[endpoints.primary]``) merges key by key, to any depth; every other value replaces the base's whole: a
number, a string, an array, and an array of tables (``[[regimen]]``, ``[[eligibility.exclusions]]``) too,
so a file that gives ``[[arms]]`` gives all the arms. ``extends`` itself is not part of the protocol. A
base that does not exist, or a chain of files that comes back to one of its own files, is refused.

What a trial stores at ``db init`` is the resolved protocol (:func:`resolved_protocol_text`), so its text
and SHA-256 do not depend on a base file that may change or move later.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol

BUNDLED_NAME = "immunosep.toml"
#: The key that names a protocol's base, and the name that means the bundled protocol.
EXTENDS = "extends"
BUNDLED_BASE = "immunosep"


def bundled_protocol_path() -> Path:
    """Path of the ImmunoSep protocol file shipped with the package."""
    return Path(str(resources.files("immunosep.protocol").joinpath(BUNDLED_NAME)))


def merge_tables(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` deep-merged into it (neither is modified): a table merges key by key; any
    other value, arrays and arrays of tables included, replaces the base's whole."""
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        merged[key] = merge_tables(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ImmunoSepError(f"{source} is not valid TOML: {exc}") from None


def _resolve(
    data: dict[str, Any], source: str, folder: Path | None, seen: tuple[Path, ...]
) -> dict[str, Any]:
    """``data`` merged into its base (itself resolved), or ``data`` when it extends nothing."""
    if EXTENDS not in data:
        return data
    own = dict(data)
    base = own.pop(EXTENDS)
    if not isinstance(base, str) or not base.strip():
        raise ImmunoSepError(
            f'{source}: extends names the base protocol: "{BUNDLED_BASE}" or a path relative to the file'
        )
    if base == BUNDLED_BASE:
        path = bundled_protocol_path().resolve()
    elif folder is None:
        raise ImmunoSepError(
            f"{source}: extends {base!r}, a path, which only a protocol file can (read it with load_protocol)"
        )
    else:
        path = (folder / base).resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ImmunoSepError(f"{source}: the protocols extend each other in a cycle: {chain}")
    if not path.is_file():
        raise ImmunoSepError(f"{source}: extends {base!r}, but there is no protocol file {path}")
    base_data = _resolve(
        _toml(path.read_text(encoding="utf-8"), str(path)), str(path), path.parent, (*seen, path)
    )
    return merge_tables(base_data, own)


def protocol_data(path: str | Path) -> dict[str, Any]:
    """The resolved protocol of a file, as TOML data (its bases merged in), not yet validated."""
    p = Path(path)
    if not p.is_file():
        raise ImmunoSepError(f"protocol file {p} does not exist")
    return _resolve(_toml(p.read_text(encoding="utf-8"), str(p)), str(p), p.parent, (p.resolve(),))


def resolved_protocol_text(path: str | Path) -> str:
    """The text a trial stores for a protocol file: the file's own text when it extends nothing (so the
    bundled protocol keeps its text and hash), else the resolved protocol written as TOML (self-contained)."""
    p = Path(path)
    if not p.is_file():
        raise ImmunoSepError(f"protocol file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    if EXTENDS not in _toml(text, str(p)):
        return text
    import tomli_w

    return f"# {p.name} resolved by immunosep (its base protocol merged in)\n" + tomli_w.dumps(
        protocol_data(p)
    )


def _validate(data: dict[str, Any], source: str) -> Protocol:
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {msg}")
        raise ImmunoSepError(f"{source} is not a valid protocol: " + "; ".join(problems)) from None


def parse_protocol(text: str, *, source: str = "<text>") -> Protocol:
    """Validate protocol TOML text; every problem is listed with its field path. Text may extend the bundled
    protocol (``extends = "immunosep"``); a path as base needs the file (:func:`load_protocol`)."""
    return _validate(_resolve(_toml(text, source), source, None, ()), source)


def load_protocol(path: str | Path | None = None) -> Protocol:
    """Load, resolve and validate a protocol file; ``None`` gives the bundled ImmunoSep protocol."""
    if path is None:
        return default_protocol()
    return _validate(protocol_data(path), str(path))


@lru_cache(maxsize=1)
def default_protocol() -> Protocol:
    """The bundled ImmunoSep protocol (validated once, immutable)."""
    path = bundled_protocol_path()
    return parse_protocol(path.read_text(encoding="utf-8"), source=str(path))

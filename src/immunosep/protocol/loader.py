"""Reading a protocol TOML file into a validated :class:`Protocol`."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol

BUNDLED_NAME = "immunosep.toml"


def bundled_protocol_path() -> Path:
    """Path of the ImmunoSep protocol file shipped with the package."""
    return Path(str(resources.files("immunosep.protocol").joinpath(BUNDLED_NAME)))


def parse_protocol(text: str, *, source: str = "<text>") -> Protocol:
    """Validate protocol TOML text; every problem is listed with its field path."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ImmunoSepError(f"{source} is not valid TOML: {exc}") from None
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {msg}")
        raise ImmunoSepError(f"{source} is not a valid protocol: " + "; ".join(problems)) from None


def load_protocol(path: str | Path | None = None) -> Protocol:
    """Load and validate a protocol file; ``None`` gives the bundled ImmunoSep protocol."""
    if path is None:
        return default_protocol()
    p = Path(path)
    if not p.is_file():
        raise ImmunoSepError(f"protocol file {p} does not exist")
    return parse_protocol(p.read_text(encoding="utf-8"), source=str(p))


@lru_cache(maxsize=1)
def default_protocol() -> Protocol:
    """The bundled ImmunoSep protocol (validated once, immutable)."""
    path = bundled_protocol_path()
    return parse_protocol(path.read_text(encoding="utf-8"), source=str(path))

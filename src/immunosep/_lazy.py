"""Lazy re-exports for a package's ``__init__`` (PEP 562), so that importing one light submodule does not
import every heavy one.

``immunosep.clinical.sofa`` runs ``immunosep/clinical/__init__.py`` first; if that imported every rule
eagerly, the command line's ``--help`` would load pydantic, scipy and statsmodels it never uses. The
package lists its public names once, by module, and the name is imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``: ``exports`` maps a submodule (relative name)
    to the public names it defines."""
    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}
    names = sorted(where)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(importlib.import_module(package), name, value)  # later lookups skip the hook
        return value

    def __dir__() -> list[str]:
        return names

    return names, __getattr__, __dir__

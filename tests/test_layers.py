"""Data flows one way: no module of ``immunosep`` imports a layer above its own (docs/architecture.md).

Every ``import`` and ``from ... import`` in ``src/immunosep`` is read from the syntax tree, wherever it is:
module level, inside a function (a lazy import is still a dependency) or under ``if TYPE_CHECKING:``.
Relative imports are resolved against the importing module. Each module belongs to one *unit* (a
subpackage, or a top-level module), each unit has a rank; a module may import units of its own rank or
lower, except the pairs of :data:`APART` (same rank, kept apart on purpose).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import immunosep

PACKAGE_DIR = Path(immunosep.__file__).parent

#: unit -> rank. A unit imports only units of its own rank or lower (not the pairs of APART).
RANK: dict[str, int] = {
    # the bottom: the package itself (its __init__ names the error types), errors, published figures
    "immunosep": 0,
    "errors": 0,
    "_lazy": 0,  # the lazy re-export helper of the package __init__ files
    "published": 0,
    # the protocol as data: thresholds, strata, arms, regimens, schedule
    "protocol": 1,
    # the pure cores: clinical rules and statistics, side by side (see APART)
    "clinical": 2,
    "stats": 2,
    # published statistics recomputed from published counts: uses only stats (and the published figures),
    # needs no database, so it sits right above stats
    "reproduce": 3,
    # SOFA for a table of patient-days in a CSV or Parquet file: file I/O over the clinical kernel, no database
    "sofa_files": 3,
    "store": 4,
    "conduct": 5,
    "analysis": 6,
    "report": 7,
    # analysis then report, in one call: above both (simulate and the commands call it)
    "pipeline": 8,
    # the two faces that drive conduct: virtual trials and the web application, side by side (see APART)
    "simulate": 9,
    "web": 9,
    # the command line: commands/ and the Typer app that collects them
    "commands": 10,
    "cli": 10,
}

#: Units of one rank that may not import each other either.
APART = frozenset({frozenset({"clinical", "stats"}), frozenset({"simulate", "web"})})


@dataclass(frozen=True)
class Import:
    """One import statement: the importing module, its line, and the ``immunosep`` module it names."""

    module: str
    line: int
    target: str


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """``immunosep.conduct.sites`` for ``.../immunosep/conduct/sites.py`` (``__init__`` is the package)."""
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every ``immunosep`` module that ``source`` imports, at any depth of its syntax tree."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                package = module.split(".")
                if not is_package:
                    package.pop()
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # ``from immunosep import stats`` imports the unit stats, not only the package's __init__
            names = [f"{target}.{a.name}" for a in node.names] if target == "immunosep" else [target]
            found += [Import(module, node.lineno, t) for t in names]
    return [i for i in found if i.target == "immunosep" or i.target.startswith("immunosep.")]


def unit_of(module: str) -> str:
    """The unit of a module: ``conduct`` for ``immunosep.conduct.sites``, ``immunosep`` for the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _defined_in_package_init(name: str) -> bool:
    return hasattr(immunosep, name) and not isinstance(getattr(immunosep, name), ModuleType)


def violation(imp: Import) -> str | None:
    """Why ``imp`` runs against the flow, or None when it is allowed."""
    source, target = unit_of(imp.module), unit_of(imp.target)
    if target not in RANK:
        if not _defined_in_package_init(target):
            return f"{target} has no rank in RANK"
        target = "immunosep"  # a name of the package's __init__ (``from immunosep import ImmunoSepError``)
    if source == target:
        return None
    if frozenset({source, target}) in APART:
        return f"{source} and {target} are kept apart"
    if RANK[target] > RANK[source]:
        return f"{source} (rank {RANK[source]}) imports {target} (rank {RANK[target]})"
    return None


def package_imports(package_dir: Path = PACKAGE_DIR) -> list[Import]:
    """The ``immunosep`` imports of every module under ``package_dir``."""
    found: list[Import] = []
    for path in sorted(package_dir.rglob("*.py")):
        found += imports_of(
            path.read_text(encoding="utf-8"),
            module_name(path, package_dir),
            is_package=path.name == "__init__.py",
        )
    return found


def test_every_module_belongs_to_a_ranked_unit() -> None:
    """A new subpackage or top-level module must be placed in the layers before it can be imported."""
    units = {unit_of(module_name(p)) for p in PACKAGE_DIR.rglob("*.py")}
    assert units - RANK.keys() == set()
    assert RANK.keys() - units == set(), "RANK names a unit the package no longer has"


def test_no_module_imports_a_layer_above_it() -> None:
    found = package_imports()
    assert len(found) > 300  # the scan sees the package's imports (475 at the time of writing)
    wrong = [
        f"{i.module}:{i.line} imports {i.target}: {why}" for i in found if (why := violation(i)) is not None
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("module", "source", "why"),
    [
        ("immunosep.store.db", "from immunosep.conduct.sites import seed_trial", "store (rank 4) imports"),
        (
            "immunosep.analysis.pipeline",
            "def f():\n    from immunosep.report.html import write_reports\n",
            "analysis (rank 6) imports report",
        ),
        (
            "immunosep.stats.survival",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from immunosep.store import models\n",
            "stats (rank 2) imports store",
        ),
        ("immunosep.clinical.sofa", "import immunosep.stats.roc", "clinical and stats are kept apart"),
        ("immunosep.web.app", "from immunosep import simulate", "web and simulate are kept apart"),
        ("immunosep.conduct.sites", "from ..simulate import runner", "conduct (rank 5) imports simulate"),
        ("immunosep.protocol.loader", "from immunosep import newthing", "newthing has no rank"),
    ],
)
def test_upward_imports_are_found(module: str, source: str, why: str) -> None:
    """The checker itself: upward imports in any position are reported (so the sweep above can fail)."""
    reasons = [r for i in imports_of(source, module) if (r := violation(i)) is not None]
    assert len(reasons) == 1
    assert why in reasons[0]


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("immunosep.conduct.sites", "from immunosep.conduct.access import trial", False),
        ("immunosep.conduct.sites", "from .access import trial", False),
        ("immunosep.conduct", "from . import access", True),
        ("immunosep.commands.demo", "from immunosep import ImmunoSepError, simulate", False),
        ("immunosep.report.html", "from immunosep.stats import formatting", False),
        ("immunosep.simulate.runner", "from immunosep.pipeline import analyse_raw", False),
        ("immunosep.stats.roc", "from immunosep.errors import ImmunoSepError", False),
    ],
)
def test_downward_and_own_imports_pass(module: str, source: str, is_package: bool) -> None:
    found = imports_of(source, module, is_package=is_package)
    assert found
    assert [violation(i) for i in found] == [None] * len(found)

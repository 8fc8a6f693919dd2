"""What the command line imports before it runs a command (issue 21: ``immunosep --help`` in under 0.3 s).

Not a timing test: the guard is the set of heavy libraries loaded, which decides the start-up time
(benchmarks/bench_cli.py measures the seconds). The checks run in one fresh interpreter, step by step
(cheaper than an interpreter per command, and stronger: the heavy set after the last help bounds them all).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "scipy", "statsmodels", "lifelines", "pydantic", "sqlalchemy", "pyarrow", "dask")


#: The command helps rendered, in turn, in one interpreter (after ``immunosep --help``).
COMMANDS = ("sofa", "classify", "stats", "simulate", "analyse", "db", "audit")
#: A command that runs: the protocol and numpy only (last, as it loads numpy).
CLASSIFY = ["classify", "--ferritin", "5000", "--json"]


def _heavy_loaded_step_by_step(steps: list[list[str]]) -> list[tuple[list[str], set[str]]]:
    """Run ``immunosep ARGS`` for each step in turn in ONE fresh interpreter; the heavy libraries loaded after
    each step. What is loaded only grows, so a set checked after a step bounds every step before it."""
    probe = f"""
import contextlib, io, json, sys
from immunosep.cli import main
seen = []
for args in {steps!r}:
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
        main(args)
    seen.append(sorted(m for m in {HEAVY!r} if m in sys.modules))
print(json.dumps(seen))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [
        (args, set(loaded))
        for args, loaded in zip(steps, json.loads(out.strip().splitlines()[-1]), strict=True)
    ]


def test_help_and_command_helps_load_no_numerical_library():
    """``--help`` loads none; after every command's help (Typer imports pydantic for its parameter adapters
    once it builds a command's parameters) still none but pydantic; running ``classify`` adds numpy only.
    One interpreter, ordered so that what an earlier step may load never hides what a later one must not."""
    steps = [["--help"], *([c, "--help"] for c in COMMANDS), CLASSIFY]
    loaded = _heavy_loaded_step_by_step(steps)
    assert loaded[0] == (["--help"], set())
    assert loaded[-2][1] <= {"pydantic"}, loaded  # cumulative: no command's help loaded more
    assert loaded[-1][1] <= {"numpy", "pydantic"}, loaded


def test_the_lazy_packages_still_export_every_name():
    """``immunosep.stats.X`` and ``from immunosep.clinical import X`` work for every name of ``__all__``."""
    import immunosep.clinical
    import immunosep.protocol
    import immunosep.stats

    for package in (immunosep.clinical, immunosep.protocol, immunosep.stats):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
        assert set(dir(package)) >= set(package.__all__)
        with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
            package.nonexistent  # noqa: B018 - the attribute access is the test

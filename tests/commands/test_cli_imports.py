"""What the command line imports before it runs a command (issue 21: ``immunosep --help`` in under 0.3 s).

Not a timing test: the guard is the set of heavy libraries loaded, which decides the start-up time
(benchmarks/bench_cli.py measures the seconds). Each check runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "scipy", "statsmodels", "lifelines", "pydantic", "sqlalchemy", "pyarrow", "dask")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_help_loads_no_numerical_library():
    code = (
        "import contextlib, io\nfrom immunosep.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
    )
    assert _loaded_after(code) == set()


@pytest.mark.parametrize("command", ["sofa", "classify", "stats", "simulate", "analyse", "db", "audit"])
def test_a_command_help_loads_no_numerical_library(command):
    """Typer itself imports pydantic (its parameter adapters) once it builds a command's parameters."""
    code = (
        "import contextlib, io\nfrom immunosep.cli import main\n"
        f"with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main([{command!r}, '--help'])\n"
    )
    assert _loaded_after(code) <= {"pydantic"}


def test_classify_loads_the_protocol_and_numpy_only():
    code = (
        "import contextlib, io\nfrom immunosep.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['classify', '--ferritin', '5000', '--json'])\n"
    )
    assert _loaded_after(code) <= {"numpy", "pydantic"}


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

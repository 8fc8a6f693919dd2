"""``bench_handlers.py --instructions``: callgrind counts what the metered stretches execute, by label."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fixtures.by_path import load_module

ROOT = Path(__file__).resolve().parent.parent
callgrind = load_module("bench_callgrind", ROOT / "benchmarks" / "_callgrind.py")


@pytest.mark.skipif(callgrind.missing() is not None, reason=str(callgrind.missing()))
def test_each_labelled_stretch_is_counted_and_twice_the_work_counts_about_twice(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(ROOT / "benchmarks")!r})
            import _callgrind
            assert _callgrind.in_child()
            meter = _callgrind.Meter()
            for n in (100_000, 200_000):
                meter.zero()
                total = 0
                for i in range(n):
                    total += i * i
                meter.dump(f"loop:{{n}}")
            """
        )
    )
    counts = callgrind.run_self_under_callgrind([str(script)])
    assert set(counts) == {"loop:100000", "loop:200000"}
    assert counts["loop:100000"] > 1_000_000  # at least ten instructions an iteration
    assert 1.9 < counts["loop:200000"] / counts["loop:100000"] < 2.1


def test_a_failing_child_is_reported_with_its_error(tmp_path: Path) -> None:
    if callgrind.missing() is not None:
        with pytest.raises(SystemExit, match="--instructions: "):
            callgrind.run_self_under_callgrind(["-c", "pass"])
        return
    with pytest.raises(SystemExit, match="ZeroDivisionError"):
        callgrind.run_self_under_callgrind(["-c", "1/0"])

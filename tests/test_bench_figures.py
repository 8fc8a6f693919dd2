"""``make bench``'s closing table: the tagged figure lines of every benchmark, in order, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.by_path import load_module

ROOT = Path(__file__).resolve().parent.parent
figures = load_module("bench_figures", ROOT / "benchmarks" / "_figures.py")


def test_the_summary_lists_each_tagged_figure_with_its_target_baseline_and_verdict(capsys) -> None:  # type: ignore[no-untyped-def]
    print("detail a benchmark prints for itself")
    figures.figure("kernel", "95 M/s", ">= 50 M/s", "73 M/s (1.30x)", True)
    figures.figure("demo", "41 s", "< 30 s", "180 s", False)
    figures.figure("ratio only", "2.0x", "", "R 1.0 s", None)
    table = figures.summary(capsys.readouterr().out.splitlines()).splitlines()
    assert table[0].split() == ["figure", "value", "target", "baseline", "(same", "run)", "target", "met"]
    assert [line.split("  ")[0].strip() for line in table[2:]] == ["kernel", "demo", "ratio only"]
    assert table[2].endswith("met") and table[3].endswith("MISSED") and table[4].endswith("-")
    assert figures.summary(["no tag here"]) == "no figures were printed"


def test_a_field_with_a_tab_is_refused() -> None:
    with pytest.raises(ValueError, match="no tab"):
        figures.figure("a\tb", "1", "2", "3", True)


def test_the_missed_figures_are_named_so_that_run_all_fails_on_a_miss_reported_without_an_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    figures.figure("web sqlite", "17 ms", "< 50 ms", "18 ms", True)
    figures.figure("web postgres", "70 ms", "< 50 ms", "42 ms", False)
    figures.figure("ratio only", "2.0x", "", "R 1.0 s", None)
    figures.figure("kernel", "48 M/s", ">= 50 M/s", "34 M/s", False)
    assert figures.missed(capsys.readouterr().out.splitlines()) == ["web postgres", "kernel"]
    assert figures.missed(["no tag here"]) == []

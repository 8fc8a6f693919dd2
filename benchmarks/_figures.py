"""The headline figures of ``make bench``: each benchmark prints one tagged line per figure (its value, its
target, its same-run baseline, met or missed), and ``run_all.sh`` gathers them into the closing table.

A benchmark calls :func:`figure`; ``python benchmarks/_figures.py summary LOG`` prints the table of every
tagged line of a log and ``... missed LOG`` the names of the figures that missed their target (``run_all.sh``
does both at the end: a benchmark that only reports a miss still fails the run). The tag keeps the figures machine-readable without
changing how each benchmark prints its own detail.
"""

from __future__ import annotations

import sys
from pathlib import Path

TAG = "FIGURE\t"


def figure(name: str, value: str, target: str, baseline: str, met: bool | None) -> None:
    """Print one headline figure: ``met`` is None when the figure has no target of its own."""
    verdict = "-" if met is None else ("met" if met else "MISSED")
    fields = (name, value, target, baseline, verdict)
    if any("\t" in f or "\n" in f for f in fields):
        raise ValueError(f"a figure's fields hold no tab or newline: {fields!r}")
    print(TAG + "\t".join(fields), flush=True)


def summary(lines: list[str]) -> str:
    """The table of the tagged lines, in the order printed."""
    rows = [line[len(TAG) :].rstrip("\n").split("\t") for line in lines if line.startswith(TAG)]
    head = ["figure", "value", "target", "baseline (same run)", "target met"]
    if not rows:
        return "no figures were printed"
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    table = [head, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table)


def missed(lines: list[str]) -> list[str]:
    """The names of the tagged figures whose target was missed, in the order printed."""
    rows = [line[len(TAG) :].rstrip("\n").split("\t") for line in lines if line.startswith(TAG)]
    return [r[0] for r in rows if r[-1] == "MISSED"]


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("summary", "missed"):
        sys.exit("usage: python benchmarks/_figures.py summary|missed LOG")
    log_lines = Path(sys.argv[2]).read_text(encoding="utf-8").splitlines()
    print(summary(log_lines) if sys.argv[1] == "summary" else "\n".join(missed(log_lines)))

"""The CONSORT flow diagram as a self-contained SVG (no fonts or scripts to fetch).

Drawn from the ``consort`` counts of results.json: screened, excluded with reasons, randomized, withdrawn
with removal of data, analysed per stratum. ``by_arm=False`` gives the blinded (pooled) diagram.
"""

from __future__ import annotations

import textwrap
from html import escape
from typing import Any

from immunosep.protocol.schema import Protocol

WIDTH = 860
LINE = 17  # px per text line
PAD = 10
CHAR = 7.0  # px per character of 13 px DejaVu Sans (measured about 6.7; for wrapping)


def _box(x: float, y: float, w: float, lines: list[str], *, bold_first: bool = True) -> tuple[str, float]:
    """An SVG box with its text lines; returns the markup and its height."""
    h = PAD * 2 + LINE * len(lines)
    parts = [f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="4" class="box"/>']
    for i, text in enumerate(lines):
        cls = "head" if (i == 0 and bold_first) else "body"
        parts.append(
            f'<text x="{x + PAD:.0f}" y="{y + PAD + LINE * (i + 1) - 4:.0f}" class="{cls}">{escape(text)}</text>'
        )
    return "\n".join(parts), h


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" class="arrow" marker-end="url(#head)"/>'


def _reason(code: str) -> str:
    """A reason as written (a code like ``do_not_resuscitate`` as words), first letter capitalized."""
    text = code.replace("_", " ") if " " not in code else code
    return text[:1].upper() + text[1:]


def _wrapped(lines: list[str], width_px: float) -> list[str]:
    """Lines wrapped to fit a box ``width_px`` wide; continuation lines keep the indentation, plus two."""
    chars = max(int((width_px - 2 * PAD) / CHAR), 10)
    out: list[str] = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" ")))
        out += textwrap.wrap(line.strip(), chars, initial_indent=indent, subsequent_indent=indent + "  ") or [
            ""
        ]
    return out


def consort_svg(consort: dict[str, Any], protocol: Protocol, *, by_arm: bool = True) -> str:
    """The CONSORT diagram as an SVG document string."""
    labels = {a.code: a.label for a in protocol.arms}
    strata = {s.code: s.label for s in protocol.strata}
    parts: list[str] = []
    main_x, main_w = 40.0, 300.0
    y = 20.0
    box, h = _box(main_x, y, main_w, [f"Assessed for eligibility (n = {consort['screened']})"])
    parts.append(box)
    excl_lines = [f"Excluded (n = {consort['excluded']})"]
    excl_lines += [f"  {_reason(code)} (n = {n})" for code, n in consort["exclusion_reasons"].items()]
    ex_y = y + h + 20
    box, ex_h = _box(400, ex_y, 440, _wrapped(excl_lines, 440))
    parts.append(box)
    rand_y = ex_y + ex_h + 20
    parts.append(_arrow(main_x + main_w / 2, y + h, main_x + main_w / 2, rand_y))
    parts.append(_arrow(main_x + main_w / 2, ex_y + ex_h / 2, 400, ex_y + ex_h / 2))
    box, rand_h = _box(main_x, rand_y, main_w, [f"Randomized (n = {consort['randomized']})"])
    parts.append(box)
    bottom = rand_y + rand_h
    if by_arm:
        columns = [
            (
                labels[arm],
                consort["randomized_by_arm"][arm],
                consort["withdrawn_by_arm"][arm],
                consort["analysed_by_arm"][arm],
                {s: consort["analysed_by_stratum_arm"][s][arm] for s in consort["analysed_by_stratum_arm"]},
            )
            for arm in protocol.arm_codes
        ]
    else:
        columns = [
            (
                "All patients",
                consort["randomized"],
                sum(consort["withdrawn_by_arm"].values()),
                consort["analysed"],
                {s: sum(v.values()) for s, v in consort["analysed_by_stratum_arm"].items()},
            )
        ]
    col_w = 370.0
    gap = (WIDTH - col_w * len(columns)) / (len(columns) + 1)
    y_alloc = bottom + 40
    max_y = y_alloc
    for k, (name, allocated, withdrawn, analysed, by_stratum) in enumerate(columns):
        x = gap + k * (col_w + gap)
        parts.append(_arrow(main_x + main_w / 2, bottom, x + col_w / 2, y_alloc))
        yy = y_alloc
        for step, lines in enumerate(
            (
                [
                    f"Allocated to {name.lower() if name != 'All patients' else 'either arm'}",
                    f"  (n = {allocated})",
                ],
                ["Withdrew consent with removal", f"  of data (n = {withdrawn})"],
                [
                    f"Analysed (n = {analysed})",
                    *(f"  {strata.get(s, s)} (n = {n})" for s, n in by_stratum.items()),
                ],
            )
        ):
            box, bh = _box(x, yy, col_w, _wrapped(lines, col_w))
            parts.append(box)
            next_y = yy + bh + 28
            if step < 2:
                parts.append(_arrow(x + col_w / 2, yy + bh, x + col_w / 2, next_y))
            yy = next_y
        max_y = max(max_y, yy)
    height = max_y - 8
    style = (
        "<style>.box{fill:#f7f9fc;stroke:#34495e;stroke-width:1.2}"
        ".head{font:bold 13px DejaVu Sans,Arial,sans-serif;fill:#1b2631}"
        ".body{font:13px DejaVu Sans,Arial,sans-serif;fill:#1b2631;white-space:pre}"
        ".arrow{stroke:#34495e;stroke-width:1.4}</style>"
    )
    defs = (
        '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#34495e"/></marker></defs>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="CONSORT flow diagram" xml:space="preserve">'
        f"{style}{defs}\n" + "\n".join(parts) + "\n</svg>\n"
    )

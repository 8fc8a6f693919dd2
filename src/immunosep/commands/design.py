"""``immunosep design``: the protocol's design, its boundaries and its size (docs/design.md).

JSON keeps full precision (the numbers equal R rpact's to 1e-6, tests/stats/test_group_sequential.py); the
table rounds for people.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from immunosep.commands._output import console, print_json, print_table

# imported by the command itself, so that `immunosep --help` loads neither pydantic nor scipy (issue 21)
if TYPE_CHECKING:
    from immunosep.stats.group_sequential import GroupSequentialDesign, GroupSequentialSampleSize


def design_summary(
    design: GroupSequentialDesign,
    size: GroupSequentialSampleSize,
    *,
    kind: str,
    futility: str,
    dropout: float,
) -> dict[str, Any]:
    """The design as data: one row per look, then the drift, the inflation and the sizes."""
    k_max = design.looks
    futility_bounds = [*design.futility_bounds, None] if design.futility_bounds else [None] * k_max
    cumulative_beta = list(design.beta_spent) if design.beta_spent else [None] * k_max
    looks = []
    for k in range(k_max):
        c = design.critical_values[k]
        f = futility_bounds[k]
        looks.append(
            {
                "look": k + 1,
                "information_rate": design.information_rates[k],
                "size": size.per_look[k],
                "efficacy_z": c,
                "efficacy_nominal_p_one_sided": design.nominal_p[k],
                "efficacy_nominal_p_two_sided": 2 * design.nominal_p[k] if design.sided == 2 else None,
                "futility_z": f,
                "futility_nominal_p_one_sided": None if f is None else 0.5 * math.erfc(f / math.sqrt(2)),
                "cumulative_alpha": design.alpha_spent[k],
                "cumulative_beta": cumulative_beta[k],
                "cumulative_power": design.power[k],
                "stop_efficacy_h0": design.h0.reject_upper[k] + design.h0.reject_lower[k],
                "stop_futility_h0": design.h0.futility[k],
                "stop_efficacy_h1": design.h1.reject_upper[k],
                "stop_futility_h1": design.h1.futility[k],
            }
        )
    maximum_with_dropout = (
        math.ceil(round(size.maximum / (1 - dropout), 9)) if size.unit == "patients" else None
    )
    return {
        "design": {
            "type": kind,
            "looks": k_max,
            "information_rates": list(design.information_rates),
            "sided": design.sided,
            "alpha": design.alpha,
            "power": 1 - design.beta,
            "alpha_spending": design.alpha_spending,
            "alpha_gamma": design.alpha_gamma,
            "futility": futility,
            "beta_spending": None if futility == "none" else design.beta_spending,
            "beta_gamma": design.beta_gamma,
            "method": design.method,
        },
        "looks": looks,
        "drift": design.drift,
        "inflation_factor": design.inflation_factor,
        "sample_size": {
            "endpoint": size.endpoint,
            "unit": size.unit,
            "fixed": size.fixed,
            "maximum": size.maximum,
            "maximum_rounded_up": math.ceil(round(size.maximum, 9)),
            "maximum_with_dropout": maximum_with_dropout,
            "dropout": dropout if size.unit == "patients" else None,
            "expected_h0": size.expected_h0,
            "expected_h01": size.expected_h01,
            "expected_h1": size.expected_h1,
            "subjects_maximum": size.subjects_maximum,
            "method": size.method,
        },
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}" if value >= 1e-5 else f"{value:.1e}"


def design(
    protocol_file: Path | None = typer.Option(None, "--protocol", help="Protocol TOML (default: ImmunoSep)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Boundaries (z and nominal P), alpha and beta spent, maximum and expected size of the protocol's design."""
    from immunosep.protocol import load_protocol
    from immunosep.stats.group_sequential import planned_design

    p = load_protocol(protocol_file)
    seq = p.design.sequential
    gsd, size = planned_design(seq, p.sample_size)
    data = design_summary(
        gsd,
        size,
        kind=p.design.type,
        futility="none" if seq is None else seq.futility,
        dropout=p.sample_size.dropout,
    )
    if as_json:
        print_json(data)
        return
    d = data["design"]
    spend = d["alpha_spending"] + (f" (gamma {d['alpha_gamma']:g})" if d["alpha_gamma"] is not None else "")
    futility = (
        "no futility bounds"
        if d["futility"] == "none"
        else (
            f"{d['futility']} futility, {d['beta_spending']} beta spending"
            + (f" (gamma {d['beta_gamma']:g})" if d["beta_gamma"] is not None else "")
        )
    )
    if seq is None:
        spend, futility = "one final analysis", "no interim looks"
    console.print(
        f"[bold]{p.trial.title}[/bold]: {d['type']} design, {d['looks']} look(s), {d['sided']}-sided alpha "
        f"{d['alpha']:g}, power {d['power']:g}; {spend} alpha spending, {futility}"
    )
    unit = size.unit
    print_table(
        "Boundaries (t information fraction, z and nominal P to stop, cumulative alpha, beta and power)",
        [
            (
                r["look"],
                f"{r['information_rate']:.3f}",
                f"{r['size']:.1f}",
                _fmt(r["efficacy_z"]),
                _p(r["efficacy_nominal_p_two_sided"] or r["efficacy_nominal_p_one_sided"]),
                _fmt(r["futility_z"]),
                _p(r["cumulative_alpha"]),
                _fmt(r["cumulative_beta"], 4),
                _fmt(r["cumulative_power"], 4),
            )
            for r in data["looks"]
        ],
        (
            "look",
            "t",
            "N" if unit == "patients" else "events",
            "z eff.",
            "P eff." + ("(2s)" if gsd.sided == 2 else ""),
            "z fut.",
            "alpha",
            "beta",
            "power",
        ),
    )
    s = data["sample_size"]
    rows = [
        ("endpoint", s["endpoint"]),
        (f"fixed design, {unit}", f"{s['fixed']:.1f}"),
        ("inflation factor", f"{data['inflation_factor']:.4f}"),
        (f"maximum {unit}", f"{s['maximum']:.1f} (rounded up {s['maximum_rounded_up']})"),
        (f"expected {unit} under H0", f"{s['expected_h0']:.1f}"),
        (f"expected {unit} under half the effect", f"{s['expected_h01']:.1f}"),
        (f"expected {unit} under H1", f"{s['expected_h1']:.1f}"),
    ]
    if s["maximum_with_dropout"] is not None:
        rows.append((f"maximum with {100 * s['dropout']:g}% dropout", str(s["maximum_with_dropout"])))
    if s["subjects_maximum"] is not None:
        rows.append(("maximum patients (accrual, follow-up)", f"{s['subjects_maximum']:.1f}"))
    print_table("Size", rows, ("", "value"))


def register(app: typer.Typer) -> None:
    """Register ``immunosep design``."""
    app.command("design")(design)

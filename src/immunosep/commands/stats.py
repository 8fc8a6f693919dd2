"""``immunosep stats compare|ordinal``, ``immunosep sample-size`` and ``immunosep reproduce``.

JSON output rounds to the printed precision of a journal table (percent 1 decimal, ratios 2 decimals, P as
JAMA prints it) and keeps full-precision values under ``"exact"`` for machines that recompute.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import typer

from immunosep.commands._output import console, print_json, print_table
from immunosep.errors import ImmunoSepError
from immunosep.stats.choices import SAMPLE_SIZE_METHODS
from immunosep.stats.formatting import format_ci, format_number, format_p

stats_app = typer.Typer(
    help="Compare two groups the way the statistical analysis plan does.", no_args_is_help=True
)

_FRACTION = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def _events_total(text: str, label: str) -> tuple[int, int]:
    """Parse ``46/131`` (events/total)."""
    m = _FRACTION.match(text)
    if not m:
        raise ImmunoSepError(f"{label}: give events/total as two whole numbers, e.g. 46/131 (got {text!r})")
    return int(m.group(1)), int(m.group(2))


def _int_list(text: str, label: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError as exc:
        raise ImmunoSepError(
            f"{label}: give comma-separated whole numbers, e.g. 58,11,32,30 (got {text!r})"
        ) from exc
    return values


def journal_p(p: float) -> float | None:
    """P rounded as printed: 2 decimals from .01, 3 decimals below, 2 significant digits below .001."""
    if not math.isfinite(p):
        return None
    if p >= 0.01:
        return round(p, 2)
    if p >= 0.001:
        return round(p, 3)
    return float(f"{p:.2g}")


def _r(value: float, decimals: int) -> float | None:
    return round(value, decimals) if math.isfinite(value) else None


@stats_app.command("compare")
def compare(
    first: str = typer.Argument(..., help="First group as events/total, e.g. 46/131."),
    second: str = typer.Argument(..., help="Second group as events/total, e.g. 26/145."),
    ci_method: str = typer.Option("newcombe", "--ci", help="Difference CI: newcombe, wald or agresti-caffo."),
    test: str = typer.Option(
        "fisher", "--test", help="Test: fisher, chi2 or chi2-yates (Fisher always reported)."
    ),
    outcome: str = typer.Option("good", "--outcome", help="Is the event good (improvement) or bad (death)?"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Difference (first minus second, %) with CI, odds ratio, relative risk, P and NNT for two proportions."""
    x1, n1 = _events_total(first, "first group")
    x2, n2 = _events_total(second, "second group")
    from immunosep.stats import compare_proportions, two_by_two_test

    r = compare_proportions(x1, n1, x2, n2, ci_method=ci_method, outcome=outcome)
    fisher_p = r.test.p
    other = two_by_two_test(x1, n1, x2, n2, test=test) if test != "fisher" else None
    d, o, rr, nn = r.difference, r.odds_ratio, r.relative_risk, r.number_needed
    methods = {
        "difference": d.method,
        "odds_ratio": o.method,
        "relative_risk": rr.method,
        "p": r.test.method,
        "nnt": nn.method,
    }
    if other is not None:
        methods[f"p_{test.replace('-', '_')}"] = other.method
    data: dict[str, Any] = {
        "first": {"events": x1, "total": n1, "pct": _r(100 * r.p1, 1)},
        "second": {"events": x2, "total": n2, "pct": _r(100 * r.p2, 1)},
        "difference_pct": _r(100 * d.estimate, 1),
        "difference_ci95": [_r(100 * d.ci_low, 1), _r(100 * d.ci_high, 1)],
        "odds_ratio": _r(o.estimate, 2),
        "odds_ratio_ci95": [_r(o.ci_low, 2), _r(o.ci_high, 2)],
        "relative_risk": _r(rr.estimate, 2),
        "relative_risk_ci95": [_r(rr.ci_low, 2), _r(rr.ci_high, 2)],
        "p_fisher": journal_p(fisher_p),
        "p_fisher_text": format_p(fisher_p),
        "nnt": {
            "kind": nn.kind,
            "value": _r(nn.value, 1),
            "ci95": [_r(nn.ci_low, 1), _r(nn.ci_high, 1)],
            "ci_crosses_zero": nn.crosses_zero,
            "text": nn.display,
        },
        "methods": methods,
        "exact": {
            "difference": d.estimate,
            "difference_ci95": [d.ci_low, d.ci_high],
            "odds_ratio": o.estimate,
            "odds_ratio_ci95": [o.ci_low, o.ci_high],
            "relative_risk": rr.estimate,
            "relative_risk_ci95": [rr.ci_low, rr.ci_high],
            "p_fisher": fisher_p,
        },
    }
    if other is not None:
        data[f"p_{test.replace('-', '_')}"] = journal_p(other.p)
    if as_json:
        print_json(data)
        return
    rows = [
        ("first group", f"{x1}/{n1} ({100 * r.p1:.1f}%)", ""),
        ("second group", f"{x2}/{n2} ({100 * r.p2:.1f}%)", ""),
        ("difference, %", f"{100 * d.estimate:.1f} ({format_ci(100 * d.ci_low, 100 * d.ci_high)})", d.method),
        ("odds ratio", f"{format_number(o.estimate)} ({format_ci(o.ci_low, o.ci_high, 2)})", o.method),
        ("relative risk", f"{format_number(rr.estimate)} ({format_ci(rr.ci_low, rr.ci_high, 2)})", rr.method),
        ("P", format_p(fisher_p), r.test.method),
        ("NNT/NNH", nn.display, nn.method),
    ]
    if other is not None:
        rows.append((f"P ({test})", format_p(other.p), other.method))
    print_table("Two proportions (first minus second)", rows, ("statistic", "value (95% CI)", "method"))


@stats_app.command("ordinal")
def ordinal(
    levels: str = typer.Option(..., "--levels", help="Levels best to worst, comma-separated."),
    a: str = typer.Option(..., "--a", help="Counts per level in group a, comma-separated."),
    b: str = typer.Option(..., "--b", help="Counts per level in group b, comma-separated."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Proportional-odds OR of a worse outcome in group a vs group b, from a table of counts."""
    names = [v.strip() for v in levels.split(",") if v.strip()]
    from immunosep.stats import proportional_odds_counts

    res = proportional_odds_counts(names, _int_list(a, "--a"), _int_list(b, "--b"))
    o = res.odds_ratio
    data = {
        "levels": list(res.levels),
        "odds_ratio": _r(o.estimate, 2),
        "odds_ratio_ci95": [_r(o.ci_low, 2), _r(o.ci_high, 2)],
        "p": journal_p(o.p),
        "p_text": format_p(o.p),
        "method": res.method,
        "n": o.n,
        "thresholds": list(res.thresholds),
        "exact": {"odds_ratio": o.estimate, "odds_ratio_ci95": [o.ci_low, o.ci_high], "p": o.p},
    }
    if as_json:
        print_json(data)
        return
    print_table(
        "Proportional odds: worse outcome, group a vs b",
        [
            ("levels (best to worst)", ", ".join(res.levels)),
            ("OR of a worse outcome", f"{format_number(o.estimate)} ({format_ci(o.ci_low, o.ci_high, 2)})"),
            ("P", format_p(o.p)),
            ("method", res.method),
        ],
        ("statistic", "value"),
    )


def sample_size(
    p1: float = typer.Option(..., "--p1", help="Expected proportion in group 1 (e.g. 0.40)."),
    p2: float = typer.Option(..., "--p2", help="Expected proportion in group 2 (e.g. 0.20)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Two-sided significance level."),
    power: float = typer.Option(0.80, "--power", help="Target power, strictly between 0 and 1."),
    method: str = typer.Option("normal", "--method", help=f"One of: {', '.join(SAMPLE_SIZE_METHODS)}."),
    dropout: float = typer.Option(0.0, "--dropout", help="Expected dropout fraction, 0 <= dropout < 1."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Per-group and total sample size for two proportions, inflated for dropout."""
    from immunosep.stats import sample_size_two_proportions

    res = sample_size_two_proportions(p1, p2, alpha=alpha, power=power, method=method, dropout=dropout)
    data = {
        "per_group": res.per_group,
        "total": res.total,
        "total_with_dropout": res.total_with_dropout,
        "achieved_power": round(res.achieved_power, 4),
        "per_group_unrounded": res.per_group_exact,
        "method": res.method,
        "inputs": {"p1": p1, "p2": p2, "alpha": alpha, "power": power, "dropout": dropout},
    }
    if as_json:
        print_json(data)
        return
    print_table(
        f"Sample size: {p1:g} vs {p2:g}, two-sided alpha {alpha:g}, power {power:g}",
        [
            ("method", res.method),
            ("per group", f"{res.per_group} (unrounded {res.per_group_exact:.2f})"),
            ("total", str(res.total)),
            (f"total with {100 * dropout:g}% dropout", str(res.total_with_dropout)),
            ("achieved power", f"{res.achieved_power:.4f}"),
        ],
        ("", "value"),
    )


def reproduce(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    out: Path | None = typer.Option(None, "--out", help="Directory for reproduce.json and reproduce.csv."),
) -> None:
    """Every Table 2 and stratum statistic of the published trial: printed figure, recomputed one, status."""
    from immunosep import reproduce as rep

    rows = rep.reproduce_published()
    if out is not None:
        rep.write_outputs(rows, out)
    if as_json:
        print_json(rep.as_json(rows))
        return
    colour = {
        rep.MATCH: "green",
        rep.MISMATCH: "yellow",
        rep.NOT_IN_REFERENCE: "cyan",
        rep.NOT_RECOMPUTABLE: "magenta",
    }
    notes: list[str] = []
    for section in dict.fromkeys(r.section for r in rows):
        table_rows = []
        for r in rows:
            if r.section != section:
                continue
            mark = ""
            if r.status in (rep.MISMATCH, rep.NOT_RECOMPUTABLE):
                tried = "; ".join(
                    f"{a.method}: {a.value}" + (" = printed" if a.reproduces_published else "")
                    for a in r.alternatives
                )
                notes.append(r.explanation + (f". Computed: {tried}" if tried else ""))
                mark = f" [{len(notes)}]"
            published = "-" if r.published is None else r.published
            table_rows.append(
                (r.statistic, published, r.recomputed, f"[{colour[r.status]}]{r.status}[/]{mark}")
            )
        print_table(section, table_rows, ("statistic", "published", "recomputed", "status"))
    for i, note in enumerate(notes, 1):
        console.print(f"[{i}] {note}", markup=False)
    console.print(", ".join(f"{k}: {v}" for k, v in rep.summary(rows).items()))
    if out is not None:
        console.print(f"wrote {out / 'reproduce.json'} and {out / 'reproduce.csv'}")


def register(app: typer.Typer) -> None:
    """Register ``stats``, ``sample-size`` and ``reproduce`` on the main app."""
    app.add_typer(stats_app, name="stats")
    app.command("sample-size")(sample_size)
    app.command("reproduce")(reproduce)

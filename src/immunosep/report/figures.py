"""Figures of the report (matplotlib, Agg backend), returned as PNG bytes ready to embed.

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies); the heat map uses
viridis. Every axis says what it shows and in which unit. The blinded versions pool the arms.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.transforms as transforms
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from immunosep.protocol.schema import Protocol
from immunosep.stats.formatting import format_p
from immunosep.stats.survival import kaplan_meier

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
ACHIEVER = "#0072B2"
NON_ACHIEVER = "#D55E00"
POOLED_COLOR = "#000000"

plt.rcParams.update(
    {
        "font.family": "DejaVu Sans",
        "font.size": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titleweight": "bold",
        "axes.titlesize": 12,
        "figure.dpi": 110,
    }
)


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def _arm_panels(adsl: pd.DataFrame, protocol: Protocol, by_arm: bool) -> list[tuple[str, pd.DataFrame]]:
    a = adsl.loc[adsl["analysed"] == 1]
    if not by_arm:
        return [("All patients", a)]
    labels = {arm.code: arm.label for arm in protocol.arms}
    return [(labels[c], a.loc[a["arm"] == c]) for c in protocol.arm_codes]


def figure_parallel_lines(adsl: pd.DataFrame, protocol: Protocol, *, by_arm: bool = True) -> bytes:
    """Figure 2A: for each patient a line from the baseline SOFA to the mean SOFA of the primary window,
    patients ordered by baseline SOFA; blue = endpoint achieved, vermilion = not achieved."""
    e = protocol.endpoints.primary
    panels = _arm_panels(adsl, protocol, by_arm)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(max(4.1 * len(panels), 7.0), 4.6), sharey=True, squeeze=False
    )
    for ax, (title, rows) in zip(axes[0], panels, strict=True):
        n_all = len(rows)
        n_ach = int((rows["primary_endpoint"] == 1).sum())
        rows = rows.dropna(subset=["sofa_baseline", "mean_sofa_d2_9"]).sort_values(
            ["sofa_baseline", "mean_sofa_d2_9"]
        )
        x = np.arange(len(rows))
        base = rows["sofa_baseline"].to_numpy(float)
        mean = rows["mean_sofa_d2_9"].to_numpy(float)
        achieved = (rows["primary_endpoint"] == 1).to_numpy(bool)
        width = max(0.3, min(1.5, 300 / max(len(rows), 1)))
        for mask, colour in ((~achieved, NON_ACHIEVER), (achieved, ACHIEVER)):
            ax.vlines(x[mask], base[mask], mean[mask], colors=colour, linewidth=width, alpha=0.85)
        ax.plot(x, base, color="#333333", linewidth=1.2, label=f"Baseline SOFA (day {e.baseline_day})")
        pct = 100 * n_ach / n_all if n_all else math.nan
        ax.set_title(f"{title}\nachieved {n_ach}/{n_all} ({pct:.1f}%)")
        ax.set_xlabel("Patients ordered by baseline SOFA")
        ax.set_xlim(-1, max(len(rows), 1))
        ax.set_xticks([])
    axes[0][0].set_ylabel(
        f"SOFA score, points\n(baseline to mean of days {e.window_first_day}-{e.window_last_day})"
    )
    axes[0][0].set_ylim(0, 24.5)
    handles = [
        plt.Line2D([0], [0], color=ACHIEVER, lw=3, label=f"Decrease >= {e.min_decrease:g} (achieved)"),
        plt.Line2D([0], [0], color=NON_ACHIEVER, lw=3, label="Not achieved"),
        plt.Line2D([0], [0], color="#333333", lw=1.2, label="Baseline SOFA"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.06))
    fig.tight_layout()
    return to_png(fig)


def heatmap_days(protocol: Protocol) -> list[int]:
    """Study days of Figure 2B: the baseline day and the primary window (days 1-9), as in the paper."""
    e = protocol.endpoints.primary
    return list(range(e.baseline_day, e.window_last_day + 1))


def heatmap_panels(
    adsofa: pd.DataFrame, protocol: Protocol, *, by_arm: bool = True
) -> list[list[tuple[str, pd.DataFrame]]]:
    """The panels of Figure 2B, rows = achiever status (achieved, not achieved), columns = arms (one pooled
    column when blinded): ``(title, matrix)`` with one matrix row per patient ordered by baseline SOFA and
    one column per day of :func:`heatmap_days` (SOFA points after the imputation rules)."""
    arms: list[str | None] = list(protocol.arm_codes) if by_arm else [None]
    labels = {a.code: a.label for a in protocol.arms}
    days = heatmap_days(protocol)
    window = adsofa.loc[adsofa["ady"].isin(days)]
    panels = []
    for flag, name in ((1, "achieved"), (0, "not achieved")):
        row = []
        for arm in arms:
            rows = window.loc[window["primary_achiever"] == flag]
            if arm is not None:
                rows = rows.loc[rows["arm"] == arm]
            matrix = rows.pivot_table(index="usubjid", columns="ady", values="aval", aggfunc="first")
            matrix = matrix.reindex(columns=days)
            if len(matrix):
                matrix = matrix.loc[matrix[days[0]].sort_values(kind="stable").index]
            row.append((f"{labels[arm] if arm else 'All patients'}\n{name} (n = {len(matrix)})", matrix))
        panels.append(row)
    return panels


def figure_heatmap(adsofa: pd.DataFrame, protocol: Protocol, *, by_arm: bool = True) -> bytes:
    """Figure 2B: SOFA of every patient (rows) on each day of :func:`heatmap_days` (columns), after the
    imputation rules, in panels of arm x achiever status (pooled arms when blinded); viridis, 0-24 points."""
    panels = heatmap_panels(adsofa, protocol, by_arm=by_arm)
    days = heatmap_days(protocol)
    n_cols = len(panels[0])
    fig, axes = plt.subplots(
        len(panels), n_cols, figsize=(max(3.5 * n_cols + 1.3, 5.5), 7.6), squeeze=False, sharex=True
    )
    image = None
    for i, row in enumerate(panels):
        for j, (title, matrix) in enumerate(row):
            ax = axes[i][j]
            if len(matrix):
                image = ax.imshow(
                    matrix.to_numpy(float),
                    aspect="auto",
                    cmap="viridis",
                    vmin=0,
                    vmax=24,
                    interpolation="nearest",
                )
            ax.set_title(title, fontsize=12)
            ax.set_yticks([])
            if i == len(panels) - 1:
                ax.set_xticks(range(len(days)))
                ax.set_xticklabels([str(d) for d in days], fontsize=11)
                ax.set_xlabel("Study day")
            if j == 0:
                ax.set_ylabel("Patients (by baseline SOFA)")
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, pad=0.02)
        bar.set_label("SOFA score, points (death = 24)")
    return to_png(fig)


#: Ordered outcome levels from best to worst: blue to vermilion (Okabe-Ito, readable in grey print).
ORDERED_COLOURS = ("#0072B2", "#56B4E9", "#E69F00", "#D55E00", "#CC79A7", "#000000")


def figure_infection_states(results: dict[str, Any], protocol: Protocol, *, by_arm: bool = True) -> bytes:
    """Infection state on the protocol day as stacked horizontal bars of percent ("Grotta bars"), one bar per
    arm (one pooled bar when blinded), levels from best to worst, each segment labelled with its percent."""
    inf = results["infection_day15"]
    levels = list(inf["levels"])
    labels = {a.code: a.label for a in protocol.arms}
    if by_arm:
        bars = [(labels[arm], inf["counts"][arm]) for arm in protocol.arm_codes]
    else:
        pooled = {lv: sum(c[lv] for c in inf["counts"].values()) for lv in levels}
        bars = [("All patients", pooled)]
    fig, ax = plt.subplots(figsize=(8.0, 0.9 + 0.7 * len(bars)))
    for row, (_, counts) in enumerate(reversed(bars)):
        n = sum(counts[lv] for lv in levels)
        left = 0.0
        for k, lv in enumerate(levels):
            pct = 100 * counts[lv] / n if n else 0.0
            colour = ORDERED_COLOURS[k % len(ORDERED_COLOURS)]
            ax.barh(
                row,
                pct,
                left=left,
                color=colour,
                edgecolor="white",
                height=0.6,
                label=lv if row == 0 else None,
            )
            if pct >= 6:
                ink = "white" if colour in ("#0072B2", "#D55E00", "#000000") else "black"
                ax.text(left + pct / 2, row, f"{pct:.0f}%", ha="center", va="center", fontsize=10, color=ink)
            left += pct
        ax.text(101, row, f"n = {n}", va="center", fontsize=10)
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels([name for name, _ in reversed(bars)])
    ax.set_xlim(0, 100)
    ax.set_xlabel("Patients, %")
    ax.set_title(f"Infection state on day {protocol.endpoints.infection_day15.day}", loc="left", pad=28)
    ax.legend(ncol=len(levels), frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=10)
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    fig.tight_layout()
    return to_png(fig)


def figure_km(
    tte_result: dict[str, Any], adtte: pd.DataFrame, protocol: Protocol, *, by_arm: bool = True
) -> bytes:
    """Kaplan-Meier curves with 95% CI bands and a numbers-at-risk table under the plot."""
    horizon = int(tte_result["horizon_day"])
    paramcd = tte_result["paramcd"]
    labels = {a.code: a.label for a in protocol.arms}
    fig = plt.figure(figsize=(7.2, 5.0))
    ax = fig.add_axes((0.26, 0.34, 0.71, 0.58))  # room on the left for the at-risk labels
    risk_ax = fig.add_axes((0.26, 0.05, 0.71, 0.16))
    days = tte_result["at_risk_days"]
    curves: list[tuple[str, str, dict[str, Any], list[int]]] = []
    if by_arm:
        for k, arm in enumerate(protocol.arm_codes):
            km = tte_result["kaplan_meier"].get(arm)
            if km:
                curves.append((labels[arm], OKABE_ITO[k], km, tte_result["at_risk"][arm]))
    else:
        rows = adtte.loc[adtte["paramcd"] == paramcd]
        if len(rows):
            km_all = kaplan_meier(
                rows["aval"].astype(float).tolist(), (rows["cnsr"] == 0).tolist(), label="all"
            )
            km_dict = {
                "times": km_all.times,
                "survival": km_all.survival,
                "ci_low": km_all.ci_low,
                "ci_high": km_all.ci_high,
            }
            at_risk = [int((rows["aval"] >= max(d, 1e-9)).sum()) for d in days]
            curves.append(("All patients", POOLED_COLOR, km_dict, at_risk))
    for label, colour, km, _ in curves:
        t = [0.0, *km["times"]]
        s = [1.0, *km["survival"]]
        lo = [1.0, *(np.nan if v is None else v for v in km["ci_low"])]
        hi = [1.0, *(np.nan if v is None else v for v in km["ci_high"])]
        ax.step(t, s, where="post", color=colour, linewidth=2, label=label)
        ax.fill_between(t, lo, hi, step="post", color=colour, alpha=0.15, linewidth=0)
    is_os = paramcd.startswith("OS")
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 1.02)
    ax.set_xticks(days)
    ax.set_xlabel("Days since the first dose")
    ax.set_ylabel("Probability of survival" if is_os else "Probability of no SIDF reversal")
    title = f"Survival to day {horizon}" if is_os else "Time to SIDF reversal (patients with serial draws)"
    ax.set_title(title, loc="left")
    legend_title = None
    if by_arm and tte_result.get("hazard_ratio"):
        hr = tte_result["hazard_ratio"]
        legend_title = (
            f"HR {hr['estimate']:.2f} (95% CI {hr['ci_low']:.2f}-{hr['ci_high']:.2f}), "
            f"log-rank {p_text(tte_result['logrank']['p'])}"
        )
    ax.legend(
        frameon=False,
        # where the curves are not: survival starts at 1 and stays high in the first days (lower left is
        # free); SIDF curves fall early and level off (upper right is free)
        loc="lower left" if is_os else "upper right",
        title=legend_title,
        title_fontsize=10,
        alignment="left",
    )
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    risk_ax.set_xlim(0, horizon)
    risk_ax.set_ylim(-0.5, len(curves) - 0.5)
    risk_ax.axis("off")
    risk_ax.set_title("No. at risk", loc="left", fontsize=10, fontweight="bold")
    for row, (label, colour, _, at_risk) in enumerate(curves):
        y = len(curves) - 1 - row
        for d, n in zip(days, at_risk, strict=True):
            risk_ax.text(d, y, str(n), ha="center", va="center", fontsize=10, color=colour)
        risk_ax.text(
            -0.05,
            y,
            label,
            ha="right",
            va="center",
            fontsize=10,
            color=colour,
            transform=risk_ax.get_yaxis_transform(),
        )
    return to_png(fig)


def figure_forest(
    subgroups: dict[str, Any],
    overall: dict[str, Any] | None,
    title: str,
    xlabel: str,
    level_labels: dict[str, str] | None = None,
    *,
    favours: tuple[str, str] | None = None,
) -> bytes:
    """Forest plot: treatment OR (95% CI, log scale) per subgroup level, the overall OR, interaction P.

    ``favours`` = (left, right): what an OR below and above 1 means, printed under the axis on each side.
    """
    level_labels = level_labels or {}
    rows: list[tuple[str, float, float, float, int, bool]] = []
    interactions: dict[str, str] = {}
    names = {
        "stratum": "Immune stratum",
        "apache2": "APACHE II",
        "cci": "Charlson comorbidity index",
        "sofa_baseline": "Baseline SOFA",
    }
    if overall and overall.get("estimate") is not None:
        rows.append(
            (
                "Overall",
                overall["estimate"],
                _nan(overall["ci_low"]),
                _nan(overall["ci_high"]),
                overall.get("n", 0),
                False,
            )
        )
    for key, entry in subgroups["by"].items():
        if "subgroups" not in entry:
            continue
        header = names.get(key, key)
        interactions[header] = f"interaction {p_text(entry['interaction']['p'])}"
        rows.append((header, math.nan, math.nan, math.nan, 0, True))
        for sg in entry["subgroups"]:
            level = level_labels.get(str(sg["level"]), str(sg["level"]))
            for prefix in names.values():
                level = level.removeprefix(prefix + " ")
            rows.append(
                (
                    "    " + level,
                    _nan(sg["estimate"]),
                    _nan(sg["ci_low"]),
                    _nan(sg["ci_high"]),
                    sg.get("n_patients", 0),
                    False,
                )
            )
    # Three columns on one row grid: labels (left-aligned, levels indented), the plot, then the numbers;
    # fixed inches per row so that every forest plot prints its text at the same size.
    row_in, top_in, bottom_in, width_in = 0.3, 0.6, 1.05, 8.0
    height_in = top_in + bottom_in + row_in * max(len(rows), 1)
    fig = plt.figure(figsize=(width_in, height_in))
    ax = fig.add_axes((0.42, bottom_in / height_in, 0.27, row_in * max(len(rows), 1) / height_in))
    ax.set_ylim(-0.5, max(len(rows), 1) - 0.5)  # no subgroup at all (a tiny trial): one empty row
    row_text = transforms.blended_transform_factory(fig.transFigure, ax.transData)
    head_text = transforms.blended_transform_factory(fig.transFigure, ax.transAxes)
    y = np.arange(len(rows))[::-1]
    for yi, (label, est, lo, hi, n, is_header) in zip(y, rows, strict=True):
        bold = is_header or label == "Overall"
        ax.text(
            0.01 if bold else 0.035,
            yi,
            label.strip(),
            transform=row_text,
            va="center",
            ha="left",
            fontsize=11,
            fontweight="bold" if bold else "normal",
        )
        if not math.isnan(est) and est > 0:
            colour = POOLED_COLOR if label == "Overall" else OKABE_ITO[0]
            ax.plot([max(lo, 1e-3), min(hi, 1e3)], [yi, yi], color=colour, linewidth=1.8)
            ax.plot(est, yi, marker="D" if label == "Overall" else "s", color=colour, markersize=7)
        if not math.isnan(est):
            ax.text(0.71, yi, f"{est:.2f} ({lo:.2f}-{hi:.2f})", transform=row_text, va="center", fontsize=11)
            ax.text(0.99, yi, str(n), transform=row_text, va="center", ha="right", fontsize=11)
        elif is_header and label in interactions:
            ax.text(
                0.71, yi, interactions[label], transform=row_text, va="center", fontsize=10, color="#444444"
            )
    for x, text, ha in ((0.71, "OR (95% CI)", "left"), (0.99, "Patients", "right")):
        ax.text(x, 1.01, text, transform=head_text, fontsize=11, fontweight="bold", va="bottom", ha=ha)
    fig.text(0.01, 1 - 0.12 / height_in, title, fontsize=13, fontweight="bold", va="top", ha="left")
    ax.axvline(1.0, color="#666666", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    low = min([r[2] for r in rows if not math.isnan(r[2])] + [0.5])
    high = max([r[3] for r in rows if not math.isnan(r[3])] + [2.0])
    ticks = [t for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 20, 50) if low / 1.5 <= t <= high * 1.5]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_yticks([])
    ax.set_xlabel(xlabel)
    if favours:
        for text, ha, dx in (("\u2190 " + favours[0], "right", -6), (favours[1] + " \u2192", "left", 6)):
            ax.annotate(
                text,
                xy=(1.0, 0),
                xycoords=("data", "axes fraction"),
                xytext=(dx, -44),
                textcoords="offset points",
                ha=ha,
                va="top",
                fontsize=10,
                color="#444444",
            )
    ax.spines["left"].set_visible(False)
    return to_png(fig)


def p_text(p: float | None) -> str:
    """``P = .20`` or ``P < .001`` (journal style)."""
    if p is None:
        return "P = NA"
    text = format_p(p)
    return f"P {text[0]} {text[1:]}" if text[0] in "<>" else f"P = {text}"


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def figure_boundaries(gs: dict[str, Any]) -> bytes:
    """Group-sequential boundaries on the z scale by information fraction, at the observed information
    (efficacy, and futility when the design has it), with the observed path of z marked (DSMB only)."""
    b = gs["boundaries"]
    t = np.asarray(b["information_rates"], dtype=float)
    eff = np.asarray([np.nan if v is None else v for v in b["efficacy_z"]], dtype=float)
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    ax.plot(t, eff, "o-", color=OKABE_ITO[3], label="efficacy boundary (z)")
    if gs["design"]["sided"] == 2:
        ax.plot(t, -eff, "o-", color=OKABE_ITO[3], alpha=0.6, label="lower efficacy boundary")
    if b["futility_z"]:
        fut = np.asarray([np.nan if v is None else v for v in b["futility_z"]], dtype=float)
        ax.plot(
            t[: len(fut)],
            fut,
            "s--",
            color=OKABE_ITO[0],
            label="futility boundary (z, non-binding)"
            if gs["design"]["futility"] == "non-binding"
            else "futility boundary (z)",
        )
    path = gs["z_path"]
    ax.plot(
        [p["information_rate"] for p in path],
        [p["z"] for p in path],
        "D-",
        color=POOLED_COLOR,
        markersize=7,
        label="observed z",
    )
    for p in path:
        ax.annotate(
            f"look {p['look']}\nz = {p['z']:.2f}",
            (p["information_rate"], p["z"]),
            textcoords="offset points",
            xytext=(6, -24),
            fontsize=9,
        )
    for planned in gs["design"]["information_rates"]:
        ax.axvline(planned, color="#bbbbbb", linewidth=0.8, linestyle=":")
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("Information fraction (dotted: planned looks)")
    ax.set_ylabel("z statistic (positive favours treatment)")
    ax.set_title("Group-sequential boundaries at the observed information")
    ax.legend(loc="best", fontsize=9, frameon=False)
    return to_png(fig)

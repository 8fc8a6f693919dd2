"""The self-contained HTML report (figures as base64 PNG, CONSORT as inline SVG, CSS inline) and its PDF.

Two audiences: the unblinded report by arm (``report.html``: the final trial report, or the DSMB report at an
interim look) and the blinded steering-committee report with the arms pooled (``report_blinded.html``). The
blinded version carries no arm label, no comparison between arms and no by-arm figure.
"""

from __future__ import annotations

import base64
import importlib.metadata
import platform
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import Any

import jinja2

from immunosep.analysis.datasets import AnalysisDatasets
from immunosep.clinical.immune import IMMUNOPARALYSIS, MALS, stratum_rule
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.report.consort import consort_svg
from immunosep.report.figures import (
    figure_boundaries,
    figure_forest,
    figure_heatmap,
    figure_infection_states,
    figure_km,
    figure_parallel_lines,
)
from immunosep.report.tables import table1, table2, table3, table3_by_stratum, table_susars
from immunosep.stats.formatting import format_ci, format_pct

CHROMIUM = "/usr/bin/chromium"
#: Flags for a quiet headless Chromium: no sandbox (containers), no GPU, and no background networking,
#: component updates or sync, so rendering a report never calls out.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
SOFTWARE = (
    "immunosep",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "lifelines",
    "matplotlib",
    "jinja2",
    "pyreadstat",
)


def software_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that computed the results."""
    versions = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def keep_parentheses(text: str) -> str:
    """A column header whose parenthesised parts never break across lines ("(n = 135)", "(95% CI)"):
    their spaces become non-breaking, so a narrow column wraps between words outside them."""
    return re.sub(r"\([^)]*\)", lambda m: m.group(0).replace(" ", "\u00a0"), text)


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def methods_text(results: dict[str, Any], protocol: Protocol, *, blinded: bool) -> list[str]:
    """The methods section, written from the protocol and the methods recorded in results.json."""
    e = protocol.endpoints.primary
    d15 = protocol.endpoints.sofa_d15
    s = protocol.sidf
    arms = (
        f"{len(protocol.arms)} double-dummy arms"
        if blinded
        else " and ".join(a.label.lower() for a in protocol.arms)
    )
    primary = results["binary_endpoints"]["primary"].get("comparison") or {}
    methods = {k: (primary.get(k) or {}).get("method", "") for k in ("difference", "odds_ratio", "test")}
    paras = [
        f"Design. Randomized, double-blind, double-dummy trial ({protocol.trial.registration}) in "
        f"{protocol.trial.sites} sites; patients were classified as macrophage activation-like syndrome "
        f"({stratum_rule(MALS, protocol)}) or sepsis-induced immunoparalysis "
        f"({stratum_rule(IMMUNOPARALYSIS, protocol)}) and randomized "
        f"{':'.join(map(str, protocol.randomization.ratio))} to {arms} with a separate sequence per site "
        f"(blocks of {', '.join(map(str, protocol.randomization.block_sizes))}).",
        f"Population. All randomized patients who did not withdraw consent with removal of their data. The sensitivity "
        f"analysis excludes patients discharged alive from the ICU before day {e.window_last_day}.",
        f"Primary endpoint. SOFA on day {e.baseline_day} (before the first dose) minus the mean SOFA of days "
        f"{e.window_first_day}-{e.window_last_day} >= {e.min_decrease:g} points. A patient who died scored "
        f"{e.death_score:g} from the day of death to day {e.death_imputed_until_day}; after discharge or loss to "
        f"follow-up, and on a missing day, the last recorded SOFA was carried forward; a missing baseline counts as "
        f"not achieved. The same rule with days {d15.window_first_day}-{d15.window_last_day} gives the day-15 endpoint.",
        f"Reversal of sepsis-induced immune dysfunction: ferritin fall >= {100 * s.mals_ferritin_min_fall_fraction:g}% "
        f"(MALS) or mHLA-DR > {s.immunoparalysis_hla_dr_above:g} (immunoparalysis) that persists at every later draw "
        f"and is confirmed by at least {s.min_confirming_draws} serial draws to the last one (draw days "
        f"{', '.join(map(str, protocol.biospecimens.days))}). Analysed in the patients with serial draws (a baseline "
        f"and at least {s.min_later_draws} later draws), as published.",
    ]
    if blinded:
        paras.append(
            "This blinded steering-committee version shows pooled counts and distributions only; no comparison between "
            "arms is computed or shown."
        )
        return paras
    stepwise = (results["adjusted_primary"].get("stepwise") or {}).get("rule", "")
    os_method = ""
    for key, surv in results["survival"].items():
        if key.startswith("OS") and surv.get("cox"):
            curves = [v for v in surv["kaplan_meier"].values() if v]
            km_method = curves[0]["method"] if curves else ""
            os_method = f"{km_method}; {surv['logrank']['method']}; {surv['cox']['method']}"
            break
    ordinal = (results["infection_day15"].get("ordinal") or {}).get("method", "")
    days = protocol.endpoints.mortality.days
    subgroup_method = ""
    for entry in results["subgroups"]["analyses"]["primary"]["by"].values():
        if "method" in entry:
            subgroup_method = entry["method"]
            break
    paras += [
        f"Binary endpoints: {methods['test']} test; odds ratio with the {methods['odds_ratio']} 95% CI (Mantel-Haenszel "
        f"across strata reported in results.json); difference in proportions with the {methods['difference']} 95% CI; "
        "numbers needed to treat or harm from the difference and its CI (Altman 1998).",
        "Confirmatory model: logistic regression of the primary endpoint on arm, baseline Charlson comorbidity index, "
        f"baseline SOFA and study site (indicator coding); stepwise selection: {stepwise}.",
        f"Survival to days {', '.join(map(str, protocol.endpoints.mortality.days))} and time to SIDF reversal: {os_method}.",
        f"Infection state on day {protocol.endpoints.infection_day15.day} "
        f"({' < '.join(protocol.endpoints.infection_day15.levels)}): {ordinal}; the odds ratio is that of a worse state.",
        "Post hoc subgroups: cut-offs of APACHE II, Charlson comorbidity index and baseline SOFA maximising the Youden "
        f"index of their ROC curve for {days[0]}-day mortality (AUC with DeLong CI), applied to the primary endpoint "
        f"and to mortality by day {' and by day '.join(map(str, days))}; "
        f"{subgroup_method}; interaction P < .05 was considered significant.",
        "P values are two-sided and reported in journal style; percentages to one decimal.",
    ]
    return paras


def _cards(results: dict[str, Any], protocol: Protocol, *, blinded: bool) -> list[dict[str, str]]:
    c = results["consort"]
    cards = [
        {"value": str(c["screened"]), "label": "patients screened"},
        {"value": str(c["randomized"]), "label": "randomized"},
        {"value": str(c["analysed"]), "label": "analysed"},
    ]
    primary = results["binary_endpoints"]["primary"]
    if blinded:
        x = sum(v["events"] for v in primary["counts"].values())
        n = sum(v["n"] for v in primary["counts"].values())
        cards.append(
            {
                "value": f"{format_pct(x / n) if n else 'NA'}%",
                "label": "achieved the primary endpoint (pooled)",
            }
        )
        return cards
    comp = primary.get("comparison") or {}
    diff = comp.get("difference") or {}
    if diff.get("estimate") is not None:
        labels = {a.code: a.label for a in protocol.arms}
        treat, control = labels[protocol.arm_codes[0]], labels[protocol.arm_codes[1]]
        ci = format_ci(100 * (diff["ci_low"] or 0), 100 * (diff["ci_high"] or 0))
        cards.append(
            {
                "value": f"{format_pct(diff['estimate'])} percentage points",
                "label": f"primary endpoint, {treat} minus {control} (95% CI {ci})",
            }
        )
    nn = comp.get("number_needed") or {}
    if nn.get("value") is not None:
        cards.append({"value": f"{nn['kind']} {nn['value']:.1f}", "label": "for the primary endpoint"})
    return cards


def _num(value: float | None, digits: int = 3) -> str:
    return "NA" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "NA"
    return f"{value:.2g}" if value < 0.001 else f"{value:.4f}"


def group_sequential_section(
    results: dict[str, Any], protocol: Protocol, *, blinded: bool
) -> dict[str, Any] | None:
    """The monitoring section of a group-sequential trial: by arm for the DSMB (the statistic against the
    boundaries at the observed information, alpha spent, conditional and predictive power, repeated CI and
    P, the decision, the boundary figure, the history of looks); blinded, only what is blind (the look,
    the information fraction, accrual, the data cut's digest, when each look was run)."""
    gs = results.get("group_sequential")
    if not gs:
        return None
    design = gs["design"]
    unit = design.get("unit", "patients")
    info = gs.get("information")
    maximum = design.get("maximum") or design.get("maximum_n")
    planned = gs.get("planned_information_rate")
    randomized = results["consort"]["randomized"]
    common = [
        ("Look", f"{gs.get('look_number', '')} of {len(design['information_rates'])} planned"),
        (
            "Information fraction, observed (planned)",
            f"{_num(gs['information_rate'])} ({_num(planned)})",
        ),
        (
            f"Information: {unit} with the endpoint"
            if unit == "patients"
            else "Information: deaths observed",
            f"{info} of {maximum:.1f} at the maximum" if info is not None and maximum else "NA",
        ),
        ("Accrual: randomized (planned)", f"{randomized} ({protocol.sample_size.total_planned})"),
        ("Data cut (SHA-256)", gs["data_cut_sha256"]),
    ]
    history = gs.get("history") or []
    if blinded:
        return {
            "rows": common,
            "figure": None,
            "history_columns": ["Look", "Run (UTC)", "Information fraction", "Data cut (SHA-256)"],
            "history": [
                [str(h["look"]), h["run_at"], _num(h["information_rate"]), h["data_cut_sha256"]]
                for h in history
            ],
            "note": "Blinded: no comparison between the arms, no statistic, boundary crossing or decision is shown.",
        }
    look = gs.get("look")
    if look is None:
        return {"rows": [*common, ("Look", gs.get("note", ""))], "figure": None, "history": [], "note": ""}
    sided = design["sided"]
    z = look["z"]
    nd = NormalDist()
    z_p = 2 * nd.cdf(-abs(z)) if sided == 2 else nd.cdf(-z)
    k = look["look"] - 1
    bounds = gs["boundaries"]
    eff_p = bounds["nominal_p"][k] * (2 if sided == 2 else 1)
    side = "two-sided" if sided == 2 else "one-sided"
    effect = gs["effect"]
    rci = effect["repeated_ci"]
    rows = [
        *common,
        (f"Test statistic z (nominal {side} P)", f"{z:.3f} (P = {_p(z_p)})"),
        (
            f"Efficacy boundary at the observed information, z (nominal {side} P)",
            f"{look['efficacy_z']:.3f} (P = {_p(eff_p)})",
        ),
    ]
    if look.get("futility_z") is not None:
        rows.append(
            (
                f"Futility boundary, z ({design['futility']}; nominal one-sided P)",
                f"{look['futility_z']:.3f} (P = {_p(nd.cdf(-look['futility_z']))})",
            )
        )
    rows += [
        (
            f"Cumulative alpha spent ({design['alpha_spending']}, total {design['alpha']:g} {side})",
            f"{gs['cumulative_alpha_spent']:.5f}",
        ),
        ("Conditional power: current trend", _num(look["conditional_power_trend"])),
        ("Conditional power: under H1 (the design's effect)", _num(look["conditional_power_h1"])),
        ("Conditional rejection probability (under H0)", _num(look["conditional_rejection_probability"])),
        ("Predictive power (flat prior)", _num(look["predictive_power"])),
        (
            f"{effect['name'][0].upper()}{effect['name'][1:]}, repeated CI",
            f"{effect['estimate']:.3f} ({rci[0]:.3f} to {rci[1]:.3f})",
        ),
        ("Repeated P-value", _p(look["repeated_p"])),
        ("Decision by the prespecified rule", look["decision"]),
    ]
    return {
        "rows": rows,
        "figure": _b64(figure_boundaries(gs)),
        "history_columns": [
            "Look",
            "Run (UTC)",
            "Run by",
            "Information fraction",
            "z",
            "Efficacy z",
            "Futility z",
            "Decision",
            "Data cut (SHA-256)",
        ],
        "history": [
            [
                str(h["look"]),
                h["run_at"],
                h["run_by"],
                _num(h["information_rate"]),
                _num(h["statistic"]),
                _num(h["efficacy_bound"]),
                _num(h["futility_bound"]),
                h["decision"],
                h["data_cut_sha256"],
            ]
            for h in history
        ],
        "note": "",
    }


def render_report(
    ds: AnalysisDatasets,
    results: dict[str, Any],
    protocol: Protocol,
    *,
    blinded: bool = False,
    interim: bool = False,
) -> str:
    """The report as one HTML string (by arm unless ``blinded``)."""
    by_arm = not blinded
    e = protocol.endpoints.primary
    figure2 = [
        {
            "png": _b64(figure_parallel_lines(ds.adsl, protocol, by_arm=by_arm)),
            "alt": "Figure 2A parallel-line plot of baseline and mean SOFA",
            "caption": f"Figure 2A. Baseline SOFA and mean SOFA of days {e.window_first_day}-{e.window_last_day} per "
            f"patient, ordered by baseline SOFA; blue lines: decrease >= {e.min_decrease:g} points.",
        },
        {
            "png": _b64(figure_heatmap(ds.adsofa, protocol, by_arm=by_arm)),
            "alt": "Figure 2B SOFA heat map",
            "caption": f"Figure 2B. Daily SOFA (after the death and carry-forward rules) on days "
            f"{e.baseline_day}-{e.window_last_day} (baseline and the primary window) by "
            f"{'arm and ' if by_arm else ''}primary-endpoint achievement; each row is one patient, ordered by "
            "baseline SOFA.",
        },
        {
            "png": _b64(figure_infection_states(results, protocol, by_arm=by_arm)),
            "alt": "Infection state on day 15",
            "caption": f"Infection state on day {protocol.endpoints.infection_day15.day} "
            f"({' < '.join(protocol.endpoints.infection_day15.levels)}), percent of the assessed patients"
            f"{' of each arm' if by_arm else ''} (counts in Table 2).",
        },
    ]
    km = []
    for paramcd, surv in results["survival"].items():
        if surv["n"] == 0:
            continue
        km.append(
            {
                "png": _b64(figure_km(surv, ds.adtte, protocol, by_arm=by_arm)),
                "alt": f"Kaplan-Meier curve {paramcd}",
                "caption": (
                    f"Kaplan-Meier estimate of survival to day {surv['horizon_day']} with 95% CI and numbers at risk."
                    if paramcd.startswith("OS")
                    else "Kaplan-Meier estimate of the probability of no SIDF reversal among assessable patients."
                ),
            }
        )
    forest = []
    cutoff_text = ""
    if by_arm:
        subgroups = results["subgroups"]
        cuts = subgroups["cutoffs"]
        cutoff_text = "Youden cut-offs for 28-day mortality: " + "; ".join(
            f"{v['label']} {v['cutoff']:g} (AUC {v['roc']['auc']['estimate']:.2f})"
            for k, v in cuts.items()
            if isinstance(v, dict)
            and v.get("roc")
            and v.get("cutoff") is not None
            and v["roc"]["auc"]["estimate"] is not None
        )
        treat, control = protocol.arms[0].label, protocol.arms[1].label
        plots = [
            (
                "primary",
                "Primary endpoint by subgroup",
                "Odds ratio of achieving the primary endpoint (log scale)",
                (f"Favours {control}", f"Favours {treat}"),
            )
        ]
        plots += [
            (
                f"mortality_{day}d",
                f"{day}-day mortality by subgroup",
                f"Odds ratio of death by day {day} (log scale)",
                (f"Favours {treat}", f"Favours {control}"),
            )
            for day in protocol.endpoints.mortality.days
        ]
        for key, title, xlabel, favours in plots:
            if key not in subgroups["analyses"]:
                continue
            overall = (results["binary_endpoints"][key].get("comparison") or {}).get("odds_ratio")
            forest.append(
                {
                    "png": _b64(
                        figure_forest(
                            subgroups["analyses"][key],
                            overall,
                            title,
                            xlabel,
                            {st.code: st.label for st in protocol.strata},
                            favours=favours,
                        )
                    ),
                    "alt": f"Forest plot {key}",
                    "caption": f"{title}: odds ratio ({treat} vs {control}) with 95% Woolf CI in each subgroup "
                    "and the Wald P for the treatment-by-subgroup interaction; subgroups by the Youden cut-offs "
                    f"for {protocol.endpoints.mortality.days[0]}-day mortality.",
                }
            )
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("immunosep.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["keep_parentheses"] = keep_parentheses
    template = env.get_template("report.html.j2")
    title = ("DSMB interim report" if interim else "Trial report") if by_arm else "Steering committee report"
    audience = (
        "Unblinded: DSMB and trial statistician" if by_arm else "Blinded: steering committee (arms pooled)"
    )
    return template.render(
        title=title,
        audience=audience,
        blinded=blinded,
        interim=interim,
        protocol=protocol,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        versions=software_versions(),
        cards=_cards(results, protocol, blinded=blinded),
        consort_svg=consort_svg(results["consort"], protocol, by_arm=by_arm),
        tables=[
            table1(ds.adsl, protocol, by_arm=by_arm),
            table2(results, protocol, by_arm=by_arm),
            table3(results, protocol, by_arm=by_arm),
            table3_by_stratum(results, protocol, by_arm=by_arm),
            table_susars(results, protocol, by_arm=by_arm),
        ],
        figure2=figure2,
        km=km,
        forest=forest,
        cutoff_text=cutoff_text,
        methods=methods_text(results, protocol, blinded=blinded),
        monitoring=group_sequential_section(results, protocol, blinded=blinded),
    )


def print_pdf(html_path: Path, pdf_path: Path, *, chromium: str = CHROMIUM, timeout_s: float = 120) -> Path:
    """Print an HTML file to PDF with headless Chromium (``--print-to-pdf``)."""
    exe = shutil.which(chromium) or (chromium if Path(chromium).exists() else None)
    if exe is None:
        raise ImmunoSepError(
            f"--pdf needs Chromium at {chromium}; install it (apt-get install chromium) or omit --pdf"
        )
    cmd = [
        exe,
        "--headless",
        *CHROMIUM_FLAGS,
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf_path}",
        html_path.resolve().as_uri(),
    ]
    # A list of arguments, no shell; the executable is the configured Chromium and the paths are our own files.
    done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)  # noqa: S603
    if done.returncode != 0 or not pdf_path.exists():
        raise ImmunoSepError(
            f"Chromium could not print {html_path} to PDF: {done.stderr.decode(errors='replace')[-300:]}"
        )
    return pdf_path


def write_reports(
    ds: AnalysisDatasets,
    results: dict[str, Any],
    protocol: Protocol,
    out_dir: Path,
    *,
    interim: bool = False,
    pdf: bool = False,
) -> dict[str, Path]:
    """Write ``report.html`` (by arm) and ``report_blinded.html`` (pooled) into ``out_dir``; with ``pdf`` also
    the PDF of each. Returns the paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out_dir / "report.html",
        "report_blinded": out_dir / "report_blinded.html",
    }
    paths["report"].write_text(
        render_report(ds, results, protocol, blinded=False, interim=interim), encoding="utf-8"
    )
    paths["report_blinded"].write_text(
        render_report(ds, results, protocol, blinded=True, interim=interim), encoding="utf-8"
    )
    if pdf:
        paths["report_pdf"] = print_pdf(paths["report"], out_dir / "report.pdf")
        paths["report_blinded_pdf"] = print_pdf(paths["report_blinded"], out_dir / "report_blinded.pdf")
    return paths

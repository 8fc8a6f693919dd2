"""``immunosep analyse``: from a locked trial database to datasets, results.json and the report.

One spelling throughout, British as CONSORT's "analysed": ``immunosep analyze`` still works, hidden from
the help, and says to use ``analyse``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import typer

from immunosep.commands._output import console, print_json, print_table

#: What the deprecated spelling prints on stderr before it runs ``analyse`` (stdout stays the result).
DEPRECATED_SPELLING = "warning: 'immunosep analyze' is deprecated; use 'immunosep analyse' (same options)"


def primary_rows(summary: dict[str, Any]) -> list[tuple[str, object]]:
    """The primary endpoint of an analysis summary for people: achievers/n (%) per arm, Fisher P."""
    from immunosep.stats.formatting import format_p, format_pct

    rows: list[tuple[str, object]] = []
    for arm, c in summary["primary"]["counts"].items():
        share = format_pct(c["events"] / c["n"]) if c["n"] else "NA"
        rows.append((f"primary endpoint, {arm}", f"{c['events']}/{c['n']} ({share}%)"))
    if comparison := summary["primary"]["comparison"]:
        rows.append(("primary endpoint P (Fisher)", format_p(comparison["test"]["p"])))
    return rows


def group_sequential_rows(gs: dict[str, Any] | None) -> list[tuple[str, object]]:
    """The group-sequential look of an analysis summary for people (empty for a fixed design)."""
    if not gs:
        return []
    rows: list[tuple[str, object]] = [("data cut (SHA-256)", gs["data_cut_sha256"])]
    if recorded := gs.get("recorded"):
        state = "recorded" if recorded["new"] else "already recorded for this data cut (not recorded again)"
        rows.append((f"interim look {recorded['look']}", state))
    look = gs.get("look")
    if look is None:
        return [*rows, ("group-sequential look", gs.get("note", ""))]
    futility = "" if look["futility_z"] is None else f", futility z {look['futility_z']:.3f}"
    return [
        *rows,
        (
            f"look {look['look']} at information {look['information_rate']:.3f}",
            f"z {look['z']:.3f} vs efficacy z {look['efficacy_z']:.3f}{futility}",
        ),
        ("decision", look["decision"]),
        (
            "conditional power (H1 / trend / H0)",
            f"{look['conditional_power_h1']:.3f} / {look['conditional_power_trend']:.3f} / "
            f"{look['conditional_rejection_probability']:.3f}",
        ),
        ("predictive power", f"{look['predictive_power']:.3f}"),
        (
            "repeated CI of the difference, repeated P",
            f"{look['repeated_ci'][0]:.3f} to {look['repeated_ci'][1]:.3f}, P {look['repeated_p']:.4f}",
        ),
    ]


def look_rows(looks: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    """The history of interim looks for people: one row per look."""
    return [
        (
            v["look"],
            v["run_at"][:16].replace("T", " "),  # ISO 8601 UTC to the minute
            v["run_by"],
            f"{v['information_rate']:.3f}",
            f"{v['statistic']:.3f}",
            f"{v['efficacy_bound']:.3f}",
            "" if v["futility_bound"] is None else f"{v['futility_bound']:.3f}",
            v["decision"],
            v["data_cut_sha256"][:12],
        )
        for v in looks
    ]


def show_looks(db: str, *, as_json: bool = False) -> None:
    """Print the trial's history of interim looks (the command line with database access)."""
    from immunosep.pipeline import DatabaseLooks

    looks = [v.as_dict() for v in DatabaseLooks(db).history()]
    if as_json:
        print_json(looks)
        return
    if not looks:
        console.print("No interim look is recorded in this trial (a fixed design records none).")
        return
    columns = (
        "look",
        "run (UTC)",
        "by",
        "information",
        "z",
        "efficacy z",
        "futility z",
        "decision",
        "data cut",
    )
    print_table("Interim looks", look_rows(looks), columns)


def analyse(
    db: str = typer.Option(
        ..., "--db", help="Database URL (sqlite:///trial.db or postgresql+psycopg://...)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output folder for datasets/, results.json and the reports (not with --looks)."
    ),
    interim: bool = typer.Option(
        False,
        "--interim",
        help="Analyse an unlocked trial (DSMB interim look; a group-sequential trial records the look).",
    ),
    looks: bool = typer.Option(
        False, "--looks", help="Only print the history of interim looks (group-sequential trials; DSMB)."
    ),
    pdf: bool = typer.Option(False, "--pdf", help="Also print the reports to PDF with headless Chromium."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Derive ADSL/ADSOFA/ADTTE/ADAE, run the statistical analysis plan and write the reports.

    Refuses a trial that is not locked unless --interim is given. With --looks: the interim looks recorded.
    """
    if looks:
        show_looks(db, as_json=as_json)
        return
    if out is None:
        raise typer.BadParameter("give --out FOLDER (or --looks to print the history of interim looks)")
    from immunosep.pipeline import run_analysis

    with console.status("analysing") as status:
        summary = run_analysis(db, out, interim=interim, pdf=pdf, progress=lambda s: status.update(s))
    if as_json:
        print_json(summary)
        return
    rows: list[tuple[str, object]] = [
        ("randomized", summary["randomized"]),
        ("analysed", summary["analysed"]),
        *primary_rows(summary),
    ]
    rows += group_sequential_rows(summary.get("group_sequential"))
    rows += [(name, path) for name, path in summary["reports"].items()]
    rows.append(("results", summary["results"]))
    print_table("Analysis" + (" (interim)" if interim else ""), rows, ("", "value"))


@functools.wraps(analyse)
def analyze(**options: Any) -> None:
    """Deprecated spelling of ``immunosep analyse`` (same options)."""
    typer.echo(DEPRECATED_SPELLING, err=True)
    analyse(**options)


analyze.__doc__ = "Deprecated: use 'immunosep analyse' (same options)."


def register(app: typer.Typer) -> None:
    """Register ``analyse`` on the main app, and ``analyze`` as its hidden, deprecated alias."""
    app.command("analyse")(analyse)
    app.command("analyze", hidden=True)(analyze)

"""``immunosep analyze``: from a locked trial database to datasets, results.json and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from immunosep.commands._output import console, print_json, print_table


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


def register(app: typer.Typer) -> None:
    """Register ``analyze`` on the main app."""

    @app.command("analyze")
    def analyze(
        db: str = typer.Option(
            ..., "--db", help="Database URL (sqlite:///trial.db or postgresql+psycopg://...)."
        ),
        out: Path = typer.Option(
            ..., "--out", help="Output folder for datasets/, results.json and the reports."
        ),
        interim: bool = typer.Option(
            False, "--interim", help="Analyse an unlocked trial (DSMB interim look)."
        ),
        pdf: bool = typer.Option(
            False, "--pdf", help="Also print the reports to PDF with headless Chromium."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Derive ADSL/ADSOFA/ADTTE/ADAE, run the statistical analysis plan and write the reports.

        Refuses a trial that is not locked unless --interim is given.
        """
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
        rows += [(name, path) for name, path in summary["reports"].items()]
        rows.append(("results", summary["results"]))
        print_table("Analysis" + (" (interim)" if interim else ""), rows, ("", "value"))

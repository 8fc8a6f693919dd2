"""``immunosep simulate calibrate|design|trial``: virtual patients, virtual trials, Monte Carlo design."""

from __future__ import annotations

from pathlib import Path

import typer

from immunosep.commands._output import console, print_json, print_table
from immunosep.errors import ImmunoSepError

simulate_app = typer.Typer(
    help="Virtual patients calibrated to the published trial: calibration, design by simulation, virtual trials.",
    no_args_is_help=True,
)


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ImmunoSepError(f"--{name} must be a positive whole number, got {value}")


@simulate_app.command("calibrate")
def calibrate(
    trials: int = typer.Option(200, "--trials", help="Simulated trials of the published size to average."),
    seed: int = typer.Option(20251208, "--seed", help="Seed of the simulation (same seed, same report)."),
    parameters: Path | None = typer.Option(
        None, "--parameters", help="Model parameter TOML (default: the bundled calibration.toml)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the report as a Markdown table."),
) -> None:
    """Compare every published target with its mean over simulated trials (calibration report)."""
    from immunosep.simulate.calibration import calibration_report, report_markdown
    from immunosep.simulate.model import load_parameters

    _check_positive("trials", trials)
    report = calibration_report(trials, seed=seed, params=load_parameters(parameters))
    if as_json:
        print_json(report.as_dict())
        return
    if markdown:
        print(report_markdown(report), end="")
        return
    print_table(
        f"Calibration: mean over {trials} simulated trials vs published",
        [
            (
                r.name,
                r.group,
                f"{r.published:.3g}",
                f"{r.simulated_mean:.3g}",
                f"{r.simulated_sd:.2g}",
                f"{r.tolerance:.3g}",
                "yes" if r.within else "[red]no[/red]",
            )
            for r in report.rows
        ],
        ("target", "group", "published", "simulated", "SD", "tolerance", "within"),
    )
    outside = sum(not r.within for r in report.rows)
    colour = "green" if outside == 0 else "red"
    console.print(
        f"[{colour}]{len(report.rows) - outside} of {len(report.rows)} targets within tolerance[/{colour}]"
    )


def register(app: typer.Typer) -> None:
    """Register the ``simulate`` group on the main app."""
    app.add_typer(simulate_app, name="simulate")

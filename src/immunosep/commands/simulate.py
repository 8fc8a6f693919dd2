"""``immunosep simulate calibrate|design|trial``: virtual patients, virtual trials, Monte Carlo design."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from immunosep.commands._output import console, print_json, print_table
from immunosep.errors import ImmunoSepError

if TYPE_CHECKING:
    from immunosep.simulate.runner import VirtualTrialRun

simulate_app = typer.Typer(
    help="Virtual patients calibrated to the published trial: calibration, design by simulation, virtual trials.",
    no_args_is_help=True,
)


# Upper bounds of the counts a command line may ask for: far above any real use (the published trial screened
# 672 patients; 10^4 virtual trials give a power to +-0.5%), below where the arrays no longer fit in memory
# or the run would not end today. Beyond them the command refuses at once instead of failing in numpy.
MAX_COUNTS = {"trials": 10_000_000, "workers": 256, "patients": 1_000_000, "screened": 100_000}


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ImmunoSepError(f"--{name} must be a positive whole number, got {value}")
    if value > MAX_COUNTS[name]:
        raise ImmunoSepError(f"--{name} must be at most {MAX_COUNTS[name]:,}, got {value}")


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


@simulate_app.command("design")
def design_command(
    trials: int = typer.Option(10000, "--trials", help="Virtual trials to simulate."),
    patients: int | None = typer.Option(
        None, "--patients", help="Patients randomized per trial (default: the protocol's total_planned)."
    ),
    null: bool = typer.Option(False, "--null", help="No treatment effect: estimate the type I error."),
    seed: int = typer.Option(20251208, "--seed", help="Seed (same seed, same result, whatever the workers)."),
    protocol_file: Path | None = typer.Option(
        None,
        "--protocol",
        help="Protocol TOML: thresholds, endpoint windows, ratio, alpha (default: ImmunoSep).",
    ),
    parameters: Path | None = typer.Option(
        None, "--parameters", help="Model parameter TOML (default: the bundled calibration.toml)."
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Address of a Dask scheduler (default: a LocalCluster on this machine)."
    ),
    workers: int = typer.Option(2, "--workers", help="Workers of the LocalCluster (1 = threads in-process)."),
    target_power: float | None = typer.Option(
        None, "--target-power", help="Also find the sample size reaching this power for the primary endpoint."
    ),
    adaptive: bool = typer.Option(
        False, "--adaptive", help="Bayesian response-adaptive design (the bundled one, or --design FILE)."
    ),
    design_file: Path | None = typer.Option(
        None, "--design", help="Adaptive design TOML (docs/adaptive.md); implies --adaptive."
    ),
    calibrate: bool = typer.Option(
        False, "--calibrate", help="Adaptive: first find the success threshold keeping the type I error."
    ),
    calibration_trials: int | None = typer.Option(
        None, "--calibration-trials", help="Adaptive: null trials of the calibration (default: --trials)."
    ),
    looks: str | None = typer.Option(
        None, "--looks", help="Adaptive: patients with outcome at each look, e.g. 140,210,280."
    ),
    success: float | None = typer.Option(None, "--success", help="Adaptive: success if P(benefit) > this."),
    futility: float | None = typer.Option(
        None, "--futility", help="Adaptive: futility if P(benefit) < this."
    ),
    borrowing: float | None = typer.Option(
        None, "--borrowing", help="Adaptive: power-prior weight of the other strata's data (0-1)."
    ),
    rar_power: float | None = typer.Option(
        None, "--rar-power", help="Adaptive: c of P^c/(P^c+(1-P)^c); 0 = 1:1 throughout."
    ),
    min_control_share: float | None = typer.Option(
        None, "--min-control-share", help="Adaptive: lowest allocation probability to control."
    ),
    drift: float | None = typer.Option(
        None, "--drift", help="Adaptive: time trend, change of the event rates from first to last patient."
    ),
    scenario_source: str | None = typer.Option(
        None, "--scenario", help="Adaptive: per-stratum rates from 'published' (default), 'model' or 'rates'."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Operating characteristics by simulation: power (or type I error with --null), MC error, effects.

    With --adaptive (or --design FILE): a Bayesian response-adaptive design by immune stratum, reporting
    per stratum power, type I error, expected sample size, stopping by look and allocation reached.
    """
    import time

    from immunosep.protocol import load_protocol
    from immunosep.simulate.model import load_parameters
    from immunosep.simulate.montecarlo import dask_runner, design, sample_size_by_simulation

    if adaptive or design_file is not None:
        if target_power is not None:
            raise ImmunoSepError(
                "--target-power is for the fixed design; an adaptive design reports its power"
            )
        _check_positive("trials", trials)
        _check_positive("workers", workers)
        if calibration_trials is not None:
            _check_positive("trials", calibration_trials)
        _adaptive_command(
            design_file,
            trials=trials,
            seed=seed,
            null=null,
            calibrate=calibrate,
            calibration_trials=calibration_trials,
            overrides={
                "trial": {"patients": patients, "looks": _parse_looks(looks)},
                "rules": {"success": success, "futility": futility},
                "model": {"borrowing": borrowing},
                "allocation": {"power": rar_power, "min_control_share": min_control_share},
                "scenario": {"drift": drift, "source": scenario_source},
            },
            protocol_file=protocol_file,
            parameters=parameters,
            scheduler=scheduler,
            workers=workers,
            as_json=as_json,
        )
        return
    for name, value in (("--calibrate", calibrate or None), ("--looks", looks), ("--success", success)):
        if value is not None:
            raise ImmunoSepError(
                f"{name} is an option of an adaptive design: add --adaptive or --design FILE"
            )

    protocol = load_protocol(protocol_file)
    params = load_parameters(parameters)
    n_patients = protocol.sample_size.total_planned if patients is None else patients
    _check_positive("trials", trials)
    _check_positive("workers", workers)
    if n_patients < 2:
        raise ImmunoSepError(f"--patients must be at least 2, got {n_patients}")
    _check_positive("patients", n_patients)
    started = time.perf_counter()
    with dask_runner(scheduler=scheduler, workers=workers) as run:
        result = design(
            params, protocol, trials=trials, patients=n_patients, seed=seed, null=null, runner=run
        )
        data = result.as_dict()
        if target_power is not None:
            model = params.with_null_effect() if null else params
            data["sample_size"] = sample_size_by_simulation(
                model, protocol, target_power=target_power, trials=trials, seed=seed, run=run
            )
    elapsed = time.perf_counter() - started
    if as_json:
        print_json(data)
        return
    kind = "type I error" if null else "power"
    rows = []
    for name, summary in result.endpoints.items():
        rows.append(
            (
                name,
                f"{summary.rejection_rate:.4f} (MC SE {summary.mcse:.4f})",
                f"{summary.rate_precision:.3f}",
                f"{summary.rate_placebo:.3f}",
                f"{summary.difference['median']:+.3f} [{summary.difference['q025']:+.3f}, "
                f"{summary.difference['q975']:+.3f}]",
                f"{summary.odds_ratio['median']:.2f} [{summary.odds_ratio['q025']:.2f}, "
                f"{summary.odds_ratio['q975']:.2f}]",
            )
        )
    print_table(
        f"{trials} virtual trials of {n_patients} patients ({protocol.trial.code}, two-sided Fisher, "
        f"alpha {result.alpha:g}{', no treatment effect' if null else ''})",
        rows,
        ("endpoint", kind, "rate precision", "rate placebo", "difference (95% of trials)", "odds ratio"),
    )
    if "sample_size" in data:
        ss = data["sample_size"]
        console.print(
            f"sample size for {ss['target_power']:g} power ({ss['endpoint']}): {ss['patients']} randomized "
            f"(simulated power {ss['power']:.4f}, MC SE {ss['mcse']:.4f})"
        )
    console.print(f"{trials / elapsed:,.0f} trials/s ({elapsed:.1f} s, {result.blocks} blocks)")


def _parse_looks(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ImmunoSepError(f"--looks must be whole numbers separated by commas, got {text!r}") from None


def _adaptive_command(
    design_file: Path | None,
    *,
    trials: int,
    seed: int,
    null: bool,
    calibrate: bool,
    calibration_trials: int | None,
    overrides: dict[str, dict[str, object]],
    protocol_file: Path | None,
    parameters: Path | None,
    scheduler: str | None,
    workers: int,
    as_json: bool,
) -> None:
    """``simulate design --adaptive``: the Bayesian response-adaptive engine on Dask."""
    import time

    from immunosep.protocol import load_protocol
    from immunosep.simulate.adaptive import adaptive_client_runner, load_design, resolve_scenario, run_design
    from immunosep.simulate.model import load_parameters
    from immunosep.simulate.montecarlo import dask_client

    base = load_design(design_file)
    trial = overrides["trial"]
    if trial["patients"] is not None and trial["looks"] is None:
        # keep the design's information fractions at the new maximum
        n_max = int(trial["patients"])  # type: ignore[call-overload]
        fractions = [look / base.trial.patients for look in base.trial.looks]
        trial["looks"] = sorted({max(1, round(f * n_max)) for f in fractions[:-1]} | {n_max})
    chosen = base.with_changes(**overrides)
    if chosen.scenario.source != "model" and (protocol_file is not None or parameters is not None):
        raise ImmunoSepError(
            "--protocol and --parameters drive the virtual-patient model: with an adaptive design they need "
            "--scenario model (the published and file scenarios give the rates directly)"
        )
    scenario = resolve_scenario(
        chosen.scenario,
        None if parameters is None else load_parameters(parameters),
        None if protocol_file is None else load_protocol(protocol_file),
    )
    started = time.perf_counter()
    with dask_client(scheduler=scheduler, workers=workers) as client:
        result = run_design(
            chosen,
            trials=trials,
            seed=seed,
            null=null,
            calibrate=calibrate,
            calibration_trials=calibration_trials,
            run=adaptive_client_runner(client),
            scenario=scenario,
        )
    elapsed = time.perf_counter() - started
    result["elapsed_s"] = round(elapsed, 2)
    if as_json:
        print_json(result)
        return
    print_adaptive(result, trials)
    console.print(f"{elapsed:.1f} s")


def _pm(value: dict[str, float], digits: int = 3) -> str:
    return f"{value['estimate']:.{digits}f} ({value['mcse']:.{digits}f})"


def print_adaptive(result: dict[str, object], trials: int) -> None:
    """The adaptive design's operating characteristics as tables (estimate and MC SE in brackets)."""
    if "calibration" in result:
        cal = result["calibration"]
        assert isinstance(cal, dict)
        console.print(
            f"calibrated success threshold {cal['success_threshold']:.5f}: {cal['error'].replace('_', '-')} "
            f"type I error {cal['type1_error']:.4f} (MC SE {cal['mcse']:.4f}) <= {cal['target']:g} on "
            f"{cal['trials']} null trials; checked below on fresh ones"
        )
    for key in ("alternative", "null"):
        if key not in result:
            continue
        summary = result[key]
        assert isinstance(summary, dict)
        looks = summary["looks"]
        kind = "type1_error" if summary["null"] else "power"
        rows = []
        for name, st in summary["strata"].items():
            rows.append(
                (
                    name,
                    f"{st['true_rates']['treatment']:.3f} vs {st['true_rates']['control']:.3f}",
                    _pm(st[kind]),
                    _pm(st["futility"]),
                    ", ".join(f"{a['estimate']:.3f}" for a in st["stop_success_by_look"]),
                    ", ".join(f"{a['estimate']:.3f}" for a in st["stop_futility_by_look"]),
                    _pm(st["expected_sample_size"], 1),
                    _pm(st["treatment_share"]),
                )
            )
        label = "no treatment effect (type I error)" if summary["null"] else "scenario (power)"
        print_table(
            f"{trials} adaptive trials, looks at {looks}, success P(benefit) > {summary['success_threshold']:.4f}, "
            f"futility < {summary['futility_threshold']:g}: {label}",
            rows,
            (
                "stratum",
                "rates trt vs ctl",
                "type I error" if summary["null"] else "power",
                "futility",
                "stop success by look",
                "stop futility by look",
                "expected N",
                "treatment share",
            ),
        )


@simulate_app.command("trial")
def trial_command(
    db: str = typer.Option(
        ...,
        "--db",
        help="Database URL of an empty database (sqlite:///trial.db or postgresql+psycopg://...).",
    ),
    seed: int = typer.Option(20251208, "--seed", help="Seed of the virtual patients and the sealed lists."),
    screened: int = typer.Option(
        672, "--screened", help="Patients screened (the published trial screened 672 and randomized 281)."
    ),
    protocol_file: Path | None = typer.Option(
        None, "--protocol", help="Protocol TOML the trial runs under (default: ImmunoSep)."
    ),
    parameters: Path | None = typer.Option(
        None, "--parameters", help="Model parameter TOML (default: the bundled calibration.toml)."
    ),
    no_lock: bool = typer.Option(False, "--no-lock", help="Leave the trial unlocked (for an interim look)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's counts as JSON."),
) -> None:
    """Run a whole virtual trial through the real conduct services into a database, then lock it."""
    from immunosep.commands._output import progress_bars
    from immunosep.simulate.model import load_parameters
    from immunosep.simulate.runner import run_virtual_trial

    _check_positive("screened", screened)
    with progress_bars() as update:
        run = run_virtual_trial(
            db,
            seed=seed,
            n_screened=screened,
            protocol_path=protocol_file,
            params=load_parameters(parameters),
            lock_at_end=not no_lock,
            progress=update,
        )
    if as_json:
        print_json(run)
        return
    print_run(run)


def print_run(run: VirtualTrialRun) -> None:
    """A virtual trial run as a small table (counts only; arms in aggregate)."""
    from dataclasses import asdict

    rows = [(k.replace("_", " "), v) for k, v in asdict(run).items() if k not in ("db_url", "seed")]
    print_table("Virtual trial", rows, ("", "value"))


def register(app: typer.Typer) -> None:
    """Register the ``simulate`` group on the main app."""
    app.add_typer(simulate_app, name="simulate")

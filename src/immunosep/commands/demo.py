"""``immunosep demo``: a complete virtual trial on an embedded SQLite database, ending in the report.

The virtual patients (calibrated to the published trial) go through the real conduct services into a fresh
``DIR/trial.db``: screening, the central lab's draws, classification, consent, randomization from the sealed
lists, daily CRFs, every double-dummy injection, outcomes, adverse events and withdrawals; the data manager
locks it; the analysis reads the locked database like a real one and writes ``DIR/datasets/``,
``DIR/results.json`` and the reports (``report.html`` by arm for the DSMB, ``report_blinded.html`` pooled).
"""

from __future__ import annotations

from pathlib import Path

import typer

from immunosep.commands._output import console, print_json, print_table, progress_bars
from immunosep.commands.analyse import primary_rows
from immunosep.errors import ImmunoSepError

DEMO_SEED = 20251208


def fresh_sqlite(path: Path) -> str:
    """The URL of a new, empty SQLite file at ``path`` (an old demo database and its WAL are removed)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        old = path.with_name(path.name + suffix)
        if old.is_dir():
            raise ImmunoSepError(f"{old} is a folder; give --out a folder without one named like that")
        old.unlink(missing_ok=True)
    return f"sqlite:///{path.resolve()}"


def demo(
    out: Path = typer.Option(
        Path("demo-output"), "--out", help="Folder for trial.db, the datasets and the report."
    ),
    seed: int = typer.Option(DEMO_SEED, "--seed", help="Seed of the virtual trial (same seed, same trial)."),
    screened: int = typer.Option(
        672, "--screened", help="Patients screened (published: 672, 281 randomized)."
    ),
    pdf: bool = typer.Option(False, "--pdf", help="Also print the reports to PDF with headless Chromium."),
    protocol_file: Path | None = typer.Option(
        None,
        "--protocol",
        help="Protocol TOML the trial runs under (default: ImmunoSep; e.g. a group-sequential one).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run a complete virtual trial into DIR/trial.db, lock it, analyse it and write the report."""
    from immunosep.pipeline import run_analysis
    from immunosep.simulate.runner import run_virtual_trial

    if screened < 1:
        raise ImmunoSepError(f"--screened must be a positive whole number, got {screened}")
    out.mkdir(parents=True, exist_ok=True)
    url = fresh_sqlite(out / "trial.db")
    with progress_bars() as update:
        run = run_virtual_trial(
            url,
            seed=seed,
            n_screened=screened,
            protocol_path=protocol_file,
            progress=update,
            durable=False,  # a fresh file the demo rebuilds on every run: no sync to disk per commit
        )
    with console.status("analysing the locked trial") as status:
        summary = run_analysis(url, out, pdf=pdf, progress=lambda step: status.update(step))
    summary["virtual_trial"] = run
    if as_json:
        print_json(summary)
        return
    rows: list[tuple[str, object]] = [
        ("screened", run.screened),
        (
            "randomized",
            f"{run.randomized} ({', '.join(f'{a} {n}' for a, n in run.randomized_by_arm.items())})",
        ),
        ("withdrew with removal of data", run.withdrawn),
        ("analysed", summary["analysed"]),
        ("daily CRFs / doses logged / draws", f"{run.crf_days} / {run.doses_logged} / {run.draws}"),
        ("serious adverse events (SUSARs)", f"{run.adverse_events} ({run.susars})"),
        (
            "refused by the services",
            f"{run.crf_values_corrected} corrected, {run.crf_values_left_missing} left missing, "
            f"{run.queries} queries, {run.entries_refused} entries left out",
        ),
        ("queries opened by the edit checks (answered, closed)", run.automatic_queries),
    ]
    rows += primary_rows(summary)
    rows += [(f"report: {name}", path) for name, path in summary["reports"].items()]
    rows += [("results", summary["results"]), ("database", str(out / "trial.db"))]
    print_table(f"ImmunoSep virtual trial (seed {seed})", rows, ("", ""))


def register(app: typer.Typer) -> None:
    """Register ``immunosep demo``."""
    app.command("demo")(demo)

"""``immunosep protocol show|check|import-odm``: the trial protocol as data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from immunosep.commands._output import console, print_json, print_table

if TYPE_CHECKING:
    from immunosep.protocol.schema import Protocol

protocol_app = typer.Typer(help="Show or check a trial protocol file.", no_args_is_help=True)


@protocol_app.command("show")
def show(
    protocol_file: Path | None = typer.Option(None, "--protocol", help="Protocol TOML (default: ImmunoSep)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Print the protocol: classification, strata, regimens, endpoints, randomization."""
    from immunosep.clinical.immune import IMMUNOPARALYSIS, MALS, UNCLASSIFIED, stratum_rule
    from immunosep.protocol import load_protocol

    p = load_protocol(protocol_file)
    if as_json:
        print_json(p.model_dump())
        return
    console.print(f"[bold]{p.trial.title}[/bold] ({p.trial.registration}, version {p.trial.version})")
    print_table(
        "Immune classification",
        [
            *((code, stratum_rule(code, p)) for code in (MALS, IMMUNOPARALYSIS, UNCLASSIFIED)),
        ],
        ("stratum", "rule"),
    )
    print_table(
        "Double-dummy regimen",
        [
            (
                i.stratum,
                i.arm,
                i.route.upper(),
                ("dummy: " if i.dummy else "") + i.drug,
                f"{i.dose:g} {i.unit}",
                f"every {i.interval_hours} h",
            )
            for i in p.regimen
        ],
        ("stratum", "arm", "route", "drug", "dose", "interval"),
    )
    e = p.endpoints.primary
    print_table(
        "Endpoints and rules",
        [
            (
                "primary",
                f"SOFA day {e.baseline_day} minus mean days {e.window_first_day}-{e.window_last_day}"
                f" >= {e.min_decrease:g}",
            ),
            ("death", f"scores {e.death_score:g} from the day of death to day {e.death_imputed_until_day}"),
            ("mortality", ", ".join(f"day {d}" for d in p.endpoints.mortality.days)),
            (
                "renal",
                f"CrCl < {p.renal.threshold_ml_min:g} mL/min: {p.renal.route.upper()} dose x "
                f"{p.renal.dose_factor:g}",
            ),
            ("biospecimens", ", ".join(str(d) for d in p.biospecimens.days)),
            ("randomization", _randomization_line(p)),
        ],
        ("rule", "value"),
    )


def _randomization_line(p: Protocol) -> str:
    """The randomization design in one line: permuted blocks, or the response-adaptive rule."""
    rnd = p.randomization
    ratio = ":".join(map(str, rnd.ratio))
    a = rnd.adaptive
    if rnd.design != "adaptive" or a is None:
        return f"ratio {ratio}, blocks {rnd.block_sizes}, per site"
    burn_in = f", first {a.burn_in} per site and stratum at {ratio}" if a.burn_in else ""
    return (
        f"response-adaptive by stratum (P^c/(P^c+(1-P)^c), c = {a.power:g}; control share >= "
        f"{a.min_control_share:g}, treatment share >= {a.min_treatment_share:g}; control {a.control_arm}"
        f"{burn_in}), per site"
    )


@protocol_app.command("check")
def check(
    path: Path = typer.Argument(..., help="Protocol TOML file to validate."),
) -> None:
    """Validate a protocol file; every problem is listed with its field."""
    from immunosep.protocol import load_protocol

    p = load_protocol(path)
    console.print(
        f"[green]ok[/green]: {path} is a valid protocol ({p.trial.code}, {len(p.enrolled_strata)} enrolled "
        f"strata, {len(p.arms)} arms, {len(p.regimen)} regimen items)"
    )


@protocol_app.command("import-odm")
def import_odm(
    path: Path = typer.Argument(..., help="CDISC ODM 1.3 file whose metadata holds the forms."),
    out: Path | None = typer.Option(None, "--out", help="Write the [crf] section here (default: print it)."),
    metadata_version: str | None = typer.Option(
        None, "--metadata-version", help="OID of the MetaDataVersion to read (default: the first)."
    ),
) -> None:
    """Turn an ODM study's forms (events, forms, item groups, items, range checks, code lists, units) into the
    ``[crf]`` section of a protocol file."""
    import tomli_w

    from immunosep.conduct.odm import read_crf_definition

    crf = read_crf_definition(path, metadata_version=metadata_version)
    text = "# Case report forms read from " + path.name + " (immunosep protocol import-odm)\n"
    text += tomli_w.dumps({"crf": crf.model_dump(exclude_none=True)})
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    items = sum(len(g.items) for f in crf.forms for g in f.groups)
    console.print(
        f"[green]ok[/green]: {len(crf.events)} events, {len(crf.forms)} forms, {items} items, "
        f"{len(crf.codelists)} code lists written to {out} (append it to a protocol file)",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(protocol_app, name="protocol")

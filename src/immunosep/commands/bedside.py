"""Bedside commands: ``immunosep classify``, ``immunosep sofa`` and ``immunosep regimen``.

Research use only. Each command prints a readable table, or JSON with ``--json``; bad input raises
:class:`~immunosep.errors.ImmunoSepError` (one line, exit code 2 through ``immunosep.cli.main``).

Units are explicit: ``--bilirubin-unit``/``--creatinine-unit`` (mg/dL or umol/L) and ``--pao2-unit``
(mmHg or kPa). A value given without its unit is read in the SOFA unit, but one that is almost surely in
another unit (bilirubin 25, creatinine 150, PaO2 8) is refused naming that unit; the ranges live in
``clinical.units.PLAUSIBLE``. The regimen is for the protocol's adults (``eligibility.min_age_years``).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from immunosep.clinical.sofa_columns import COMPONENTS, SOFA_INPUT_COLUMNS
from immunosep.clinical.units import PLAUSIBLE
from immunosep.commands._output import console, err_console, print_json, print_table
from immunosep.errors import ImmunoSepError
from immunosep.sofa_files import CHUNK_ROWS

# The rules (numpy) and the protocol (pydantic) are imported by the commands that use them, so that
# `immunosep --help` loads neither (issue 21: the CLI starts in under 0.3 s).
if TYPE_CHECKING:
    from immunosep.clinical.renal import WeightPolicy
    from immunosep.protocol.schema import Protocol

_PROTOCOL_OPTION = typer.Option(None, "--protocol", help="Protocol TOML (default: the bundled ImmunoSep).")
_JSON_OPTION = typer.Option(False, "--json", help="Print JSON for machines.")


#: The flag that states the unit of a field, named in a refusal so the user knows what to type.
_UNIT_FLAGS = {
    "bilirubin_mg_dl": "--bilirubin-unit",
    "creatinine_mg_dl": "--creatinine-unit",
    "pao2_mmhg": "--pao2-unit",
    "pao2_fio2_mmhg": "--pao2-unit",
}


def _with_unit_flag(exc: ImmunoSepError) -> ImmunoSepError:
    """The refusal with the command's unit flag (``--creatinine-unit umol/L``) when the unit is the fix."""
    flag = _UNIT_FLAGS.get(exc.field or "")
    if flag is None or not any(w in exc.message for w in ("looks like", "unit")):
        return exc
    units = "|".join(PLAUSIBLE[exc.field or ""].units)
    return ImmunoSepError(f"{exc.message} [state it with {flag} {units}]", field=exc.field)


# -- results as plain data (shared with `immunosep demo`) -----------------------------------------------
def _dose_text(d: dict[str, Any]) -> str:
    return f"{d['dose']:g} {d['unit']} in {d['volume_ml']:g} mL"


def classify_result(
    ferritin: float, hla_dr: float | None, protocol: Protocol, ferritin_unit: str = "ng/mL"
) -> dict[str, Any]:
    """The stratum and, for an enrolled stratum, the regimen of each arm (before renal adjustment)."""
    from immunosep.clinical.immune import classify as classify_stratum
    from immunosep.clinical.regimen import daily_regimen

    stratum = classify_stratum(ferritin, hla_dr, protocol, ferritin_unit=ferritin_unit)
    enrolled = stratum in protocol.enrolled_strata
    regimen = (
        {arm: [asdict(d) for d in daily_regimen(stratum, arm, None, protocol)] for arm in protocol.arm_codes}
        if enrolled
        else {}
    )
    return {
        "stratum": stratum,
        "enrolled": enrolled,
        "ferritin_ng_ml": ferritin,
        "hla_dr": hla_dr,
        "regimen": regimen,
    }


def regimen_result(
    *,
    stratum: str,
    arm: str,
    age: float,
    weight_kg: float,
    sex: str,
    creatinine: float,
    creatinine_unit: str | None,
    height_cm: float | None,
    weight_policy: WeightPolicy | None,
    protocol: Protocol,
) -> dict[str, Any]:
    """Creatinine clearance and the day's injections for an adult patient.

    ``creatinine_unit=None``: no unit given (mg/dL, but a value that looks like umol/L is refused).
    Age below the protocol's ``eligibility.min_age_years`` is refused: the regimen and Cockcroft-Gault
    are for the trial's adults.
    """
    from immunosep.clinical.regimen import daily_regimen, describe_clearance
    from immunosep.clinical.renal import creatinine_clearance_ml_min
    from immunosep.clinical.units import measured

    adult = protocol.eligibility.min_age_years
    if age < adult:
        raise ImmunoSepError(
            f"age {age:g} is below {adult} years: the protocol's regimen (and Cockcroft-Gault) is for adults",
            field="age_years",
        )
    try:
        scr = float(
            measured("creatinine_mg_dl", creatinine, creatinine_unit, stated=creatinine_unit is not None)
        )
    except ImmunoSepError as exc:
        raise _with_unit_flag(exc) from None
    policy = weight_policy or protocol.renal.weight_policy
    crcl = float(
        creatinine_clearance_ml_min(
            age, weight_kg, sex, scr, height_cm=height_cm, weight_policy=policy, protocol=protocol
        )
    )
    items = [asdict(d) for d in daily_regimen(stratum, arm, crcl, protocol)]
    return {
        "stratum": stratum,
        "arm": arm,
        "creatinine_clearance_ml_min": crcl,
        "creatinine_clearance_text": describe_clearance(crcl, protocol),
        "weight_policy": policy,
        "renal_threshold_ml_min": protocol.renal.threshold_ml_min,
        "renal_adjusted": any(i["renal_adjusted"] for i in items),
        **{i["route"]: i for i in items},
        "items": items,
    }


# -- classify -------------------------------------------------------------------------------------------
def classify_command(
    ferritin: float = typer.Option(..., "--ferritin", help="Serum ferritin (ng/mL = ug/L)."),
    hla_dr: float | None = typer.Option(
        None, "--hla-dr", help="Monocyte HLA-DR, receptors per CD45/CD14 monocyte (needed unless MALS)."
    ),
    ferritin_unit: str = typer.Option("ng/mL", "--ferritin-unit", help="ng/mL or ug/L (the same unit)."),
    protocol_file: Path | None = _PROTOCOL_OPTION,
    as_json: bool = _JSON_OPTION,
) -> None:
    """Immune stratum (MALS, immunoparalysis, unclassified) and the regimen it implies per arm."""
    from immunosep.protocol import load_protocol

    p = load_protocol(protocol_file)
    result = classify_result(ferritin, hla_dr, p, ferritin_unit)
    if as_json:
        print_json(result)
        return
    label = {s.code: s.label for s in p.strata}[result["stratum"]]
    console.print(f"stratum: [bold]{result['stratum']}[/bold] ({label})")
    if not result["enrolled"]:
        console.print("not enrolled: this stratum receives no study treatment")
        return
    print_table(
        "Regimen by arm (double dummy; before renal adjustment)",
        [
            (
                arm,
                d["route"].upper(),
                ("dummy: " if d["dummy"] else "") + d["drug"],
                _dose_text(d),
                f"every {d['interval_hours']} h",
            )
            for arm, items in result["regimen"].items()
            for d in items
        ],
        ("arm", "route", "drug", "dose", "interval"),
    )


# -- sofa -----------------------------------------------------------------------------------------------
_SOFA_HELP = (
    "SOFA score (Vincent 1996) for one patient-day from the flags, or for a whole table with "
    "--input/--output (.csv or .parquet). Table columns (NaN/empty = not measured): "
    + ", ".join(SOFA_INPUT_COLUMNS)
    + "; alternatives: pao2_fio2_kpa, pao2_mmhg or pao2_kpa + fio2 (fraction or %), bilirubin_umol_l, "
    "creatinine_umol_l. Vasopressors in ug/kg/min, urine output in mL/day, ventilated 1/0. Without "
    "--bilirubin-unit/--creatinine-unit a value that looks like umol/L (bilirubin above "
    f"{PLAUSIBLE['bilirubin_mg_dl'].unstated_high:g}, creatinine above "
    f"{PLAUSIBLE['creatinine_mg_dl'].unstated_high:g}) is refused; a PaO2 below "
    f"{PLAUSIBLE['pao2_mmhg'].low:g} mmHg looks like kPa (--pao2-unit kPa). The output is the input "
    "plus sofa_respiration, sofa_coagulation, sofa_liver, sofa_cardiovascular, sofa_cns, sofa_renal, "
    "sofa_total and sofa_missing."
)


def _score_file_with_bar(input_path: Path, output_path: Path, chunk_rows: int, show: bool) -> int:
    """:func:`immunosep.sofa_files.score_file` with a progress bar on stderr for a table of more than one
    chunk (or of unknown length, as a CSV file)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from immunosep.sofa_files import score_file

    with ExitStack() as stack:
        bar: Progress | None = None
        task: TaskID | None = None

        def update(done: int, total: int | None) -> None:
            nonlocal bar, task
            if bar is None:
                bar = Progress(
                    TextColumn("scoring SOFA"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=err_console,
                    transient=True,
                    disable=not (show and (total is None or total > chunk_rows)),
                )
                stack.enter_context(bar)
                task = bar.add_task("rows", total=total)
            assert task is not None
            bar.update(task, completed=done)

        return score_file(input_path, output_path, chunk_rows=chunk_rows, progress=update)


def sofa_command(
    pao2_fio2: float | None = typer.Option(
        None, "--pao2-fio2", help="PaO2/FiO2 ratio (mmHg, or --pao2-unit)."
    ),
    pao2: float | None = typer.Option(
        None, "--pao2", help="Arterial PaO2 (mmHg, or --pao2-unit), with --fio2."
    ),
    pao2_unit: str | None = typer.Option(
        None, "--pao2-unit", help="mmHg or kPa, for --pao2 and --pao2-fio2."
    ),
    fio2: float | None = typer.Option(None, "--fio2", help="FiO2 as 0.21-1.0 or 21-100 %."),
    ventilated: bool = typer.Option(False, "--ventilated", help="On mechanical ventilation."),
    platelets: float | None = typer.Option(None, "--platelets", help="Platelets, x10^3/uL."),
    bilirubin: float | None = typer.Option(None, "--bilirubin", help="Total bilirubin."),
    bilirubin_unit: str | None = typer.Option(
        None, "--bilirubin-unit", help="mg/dL or umol/L (without it: mg/dL, unless it looks like umol/L)."
    ),
    map_mmhg: float | None = typer.Option(None, "--map", help="Mean arterial pressure, mmHg."),
    dopamine: float | None = typer.Option(None, "--dopamine", help="Dopamine, ug/kg/min."),
    dobutamine: float | None = typer.Option(None, "--dobutamine", help="Dobutamine, ug/kg/min."),
    epinephrine: float | None = typer.Option(None, "--epinephrine", help="Epinephrine, ug/kg/min."),
    norepinephrine: float | None = typer.Option(None, "--norepinephrine", help="Norepinephrine, ug/kg/min."),
    gcs: float | None = typer.Option(None, "--gcs", help="Glasgow coma scale, 3-15."),
    creatinine: float | None = typer.Option(None, "--creatinine", help="Serum creatinine."),
    creatinine_unit: str | None = typer.Option(
        None, "--creatinine-unit", help="mg/dL or umol/L (without it: mg/dL, unless it looks like umol/L)."
    ),
    urine_output: float | None = typer.Option(None, "--urine-output", help="Urine output, mL/day."),
    input_file: Path | None = typer.Option(None, "--input", help="Table of patient-days (.csv or .parquet)."),
    output_file: Path | None = typer.Option(None, "--output", help="Scored table (.csv or .parquet)."),
    chunk_rows: int = typer.Option(CHUNK_ROWS, "--chunk-rows", min=1, help="Rows per chunk for --input."),
    as_json: bool = _JSON_OPTION,
) -> None:
    single = {
        "--pao2-fio2": pao2_fio2,
        "--pao2": pao2,
        "--fio2": fio2,
        "--platelets": platelets,
        "--bilirubin": bilirubin,
        "--map": map_mmhg,
        "--dopamine": dopamine,
        "--dobutamine": dobutamine,
        "--epinephrine": epinephrine,
        "--norepinephrine": norepinephrine,
        "--gcs": gcs,
        "--creatinine": creatinine,
        "--urine-output": urine_output,
    }
    if input_file is not None or output_file is not None:
        if input_file is None or output_file is None:
            raise ImmunoSepError("--input and --output go together (score a table into a new file)")
        units = {
            "--pao2-unit": pao2_unit,
            "--bilirubin-unit": bilirubin_unit,
            "--creatinine-unit": creatinine_unit,
        }
        given = [flag for flag, value in {**single, **units}.items() if value is not None] + (
            ["--ventilated"] if ventilated else []
        )
        if given:
            raise ImmunoSepError(f"with --input the values come from the table; drop {', '.join(given)}")
        rows = _score_file_with_bar(input_file, output_file, chunk_rows, show=not as_json)
        if as_json:
            print_json({"input": str(input_file), "output": str(output_file), "rows": rows})
        else:
            console.print(f"scored {rows} patient-days from {input_file} into {output_file}")
        return
    try:
        score = _score_flags(
            pao2_fio2=pao2_fio2,
            pao2=pao2,
            pao2_unit=pao2_unit,
            fio2=fio2,
            ventilated=ventilated,
            platelets=platelets,
            bilirubin=bilirubin,
            bilirubin_unit=bilirubin_unit,
            map_mmhg=map_mmhg,
            dopamine=dopamine,
            dobutamine=dobutamine,
            epinephrine=epinephrine,
            norepinephrine=norepinephrine,
            gcs=gcs,
            creatinine=creatinine,
            creatinine_unit=creatinine_unit,
            urine_output=urine_output,
        )
    except ImmunoSepError as exc:
        raise _with_unit_flag(exc) from None
    if as_json:
        print_json({**asdict(score), "missing": list(score.missing)})
        return
    print_sofa(score)


def _score_flags(**f: Any) -> Any:
    from immunosep.clinical.sofa import sofa

    return sofa(
        pao2_fio2_mmhg=f["pao2_fio2"],
        pao2_mmhg=f["pao2"],
        pao2_unit=f["pao2_unit"],
        fio2=f["fio2"],
        ventilated=f["ventilated"],
        platelets_1e3_ul=f["platelets"],
        bilirubin_mg_dl=f["bilirubin"],
        bilirubin_unit=f["bilirubin_unit"],
        map_mmhg=f["map_mmhg"],
        dopamine_ug_kg_min=f["dopamine"],
        dobutamine_ug_kg_min=f["dobutamine"],
        epinephrine_ug_kg_min=f["epinephrine"],
        norepinephrine_ug_kg_min=f["norepinephrine"],
        gcs=f["gcs"],
        creatinine_mg_dl=f["creatinine"],
        creatinine_unit=f["creatinine_unit"],
        urine_ml_day=f["urine_output"],
    )


sofa_command.__doc__ = _SOFA_HELP


def print_sofa(score: Any) -> None:
    """The SOFA components as a table for people."""
    print_table(
        "SOFA (Vincent 1996)",
        [(c, "missing (0)" if c in score.missing else getattr(score, c)) for c in COMPONENTS]
        + [("total", score.total)],
        ("component", "points"),
    )


# -- regimen --------------------------------------------------------------------------------------------
def regimen_command(
    stratum: str = typer.Option(..., "--stratum", help="mals or immunoparalysis."),
    arm: str = typer.Option(..., "--arm", help="precision or placebo."),
    age: float = typer.Option(..., "--age", help="Age, years (adults: the protocol's minimum age)."),
    weight_kg: float = typer.Option(..., "--weight-kg", help="Body weight, kg."),
    sex: str = typer.Option(..., "--sex", help="male or female."),
    creatinine: float = typer.Option(..., "--creatinine", help="Serum creatinine."),
    creatinine_unit: str | None = typer.Option(
        None, "--creatinine-unit", help="mg/dL or umol/L (without it: mg/dL, unless it looks like umol/L)."
    ),
    height_cm: float | None = typer.Option(None, "--height-cm", help="Height, cm (ideal/adjusted weight)."),
    weight_policy: str | None = typer.Option(
        None, "--weight-policy", help="actual, ideal or adjusted (default from the protocol)."
    ),
    protocol_file: Path | None = _PROTOCOL_OPTION,
    as_json: bool = _JSON_OPTION,
) -> None:
    """Cockcroft-Gault creatinine clearance and the day's IV and SC injections (double dummy)."""
    from immunosep.protocol import load_protocol

    p = load_protocol(protocol_file)
    if weight_policy is not None and weight_policy not in ("actual", "ideal", "adjusted"):
        raise ImmunoSepError(f"--weight-policy {weight_policy!r} must be actual, ideal or adjusted")
    result = regimen_result(
        stratum=stratum,
        arm=arm,
        age=age,
        weight_kg=weight_kg,
        sex=sex,
        creatinine=creatinine,
        creatinine_unit=creatinine_unit,
        height_cm=height_cm,
        weight_policy=weight_policy,  # type: ignore[arg-type]
        protocol=p,
    )
    if as_json:
        print_json(result)
        return
    console.print(
        f"creatinine clearance (Cockcroft-Gault, {result['weight_policy']} weight): "
        f"[bold]{result['creatinine_clearance_text']}[/bold]"
    )
    print_table(
        f"Injections of the day ({stratum}, {arm})",
        [
            (
                d["route"].upper(),
                ("dummy: " if d["dummy"] else "") + d["drug"],
                _dose_text(d),
                f"every {d['interval_hours']} h",
                f"{d['administrations_per_day']:g}",
                "yes" if d["renal_adjusted"] else "",
            )
            for d in result["items"]
        ],
        ("route", "drug", "dose", "interval", "per day", "renal"),
    )


def register(app: typer.Typer) -> None:
    """Register ``classify``, ``sofa`` and ``regimen`` on the main app."""
    app.command("classify")(classify_command)
    app.command("sofa", help=_SOFA_HELP)(sofa_command)
    app.command("regimen")(regimen_command)

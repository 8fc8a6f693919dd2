"""Bedside commands: ``immunosep classify``, ``immunosep sofa`` and ``immunosep regimen``.

Research use only. Each command prints a readable table, or JSON with ``--json``; bad input raises
:class:`~immunosep.errors.ImmunoSepError` (one line, exit code 2 through ``immunosep.cli.main``).

Units are explicit: ``--bilirubin-unit``/``--creatinine-unit`` (mg/dL or umol/L) and ``--pao2-unit``
(mmHg or kPa). A value given without its unit is read in the SOFA unit, but one that is almost surely in
another unit (bilirubin 25, creatinine 150, PaO2 8) is refused naming that unit; the ranges live in
``clinical.units.PLAUSIBLE``. The regimen is for the protocol's adults (``eligibility.min_age_years``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from immunosep.clinical.immune import classify as classify_stratum
from immunosep.clinical.regimen import daily_regimen, renal_adjustment_applies
from immunosep.clinical.renal import WeightPolicy, creatinine_clearance_ml_min
from immunosep.clinical.sofa import (
    COMPONENTS,
    MISSING_NAME_BY_MASK,
    SCORE_COLUMNS,
    SOFA_FRAME_COLUMNS,
    SOFA_INPUT_COLUMNS,
    missing_names,
    score_sofa_frame_arrays,
    sofa,
)
from immunosep.clinical.units import PLAUSIBLE, measured
from immunosep.commands._output import console, err_console, print_json, print_table
from immunosep.errors import ImmunoSepError
from immunosep.protocol import load_protocol
from immunosep.protocol.schema import Protocol

CHUNK_ROWS = 250_000

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


def clearance_text(crcl_ml_min: float, protocol: Protocol) -> str:
    """The clearance with enough digits to show its side of the renal threshold, and the rule's side.

    29.96 mL/min prints as "29.96 mL/min (below 30: IV dose x 0.5)", never as a rounded "30.0" next to
    "below 30"; 30.0 exactly prints as "30.0 mL/min (30 or above: full IV dose)".
    """
    r = protocol.renal
    below = renal_adjustment_applies(crcl_ml_min, protocol)
    for digits in range(1, 7):
        text = f"{crcl_ml_min:.{digits}f}"
        shown = float(text)
        if (shown < r.threshold_ml_min) == below and (shown != r.threshold_ml_min or not below):
            break
    else:
        text = repr(crcl_ml_min)
    side = (
        f"below {r.threshold_ml_min:g}: {r.route.upper()} dose x {r.dose_factor:g}"
        if below
        else f"{r.threshold_ml_min:g} or above: full {r.route.upper()} dose"
    )
    return f"{text} mL/min ({side})"


# -- results as plain data (shared with `immunosep demo`) -----------------------------------------------
def _dose_text(d: dict[str, Any]) -> str:
    return f"{d['dose']:g} {d['unit']} in {d['volume_ml']:g} mL"


def classify_result(
    ferritin: float, hla_dr: float | None, protocol: Protocol, ferritin_unit: str = "ng/mL"
) -> dict[str, Any]:
    """The stratum and, for an enrolled stratum, the regimen of each arm (before renal adjustment)."""
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
        "creatinine_clearance_text": clearance_text(crcl, protocol),
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


def _format_of(path: Path, role: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ImmunoSepError(f"{role} file {path} must end in .csv or .parquet", field=role)


def _read_chunks(path: Path, chunk_rows: int) -> tuple[int | None, Iterator[Any]]:
    """(total rows if known, iterator of chunks): Arrow tables for Parquet, pandas frames for CSV."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ImmunoSepError(f"input file {path} does not exist")
    if _format_of(path, "input") == "csv":
        try:
            reader = pd.read_csv(path, chunksize=chunk_rows)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ImmunoSepError(f"cannot read {path} as CSV: {exc}") from None
        return None, iter(reader)
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for a damaged or non-Parquet file
        raise ImmunoSepError(f"cannot read {path} as Parquet: {exc}") from None
    return pf.metadata.num_rows, (pa.Table.from_batches([b]) for b in pf.iter_batches(batch_size=chunk_rows))


def _file_rows(message: str, offset: int) -> str:
    """Turn the kernel's 0-based row index within a chunk into a 1-based row number of the file."""
    return re.sub(r"row index (\d+)", lambda m: f"row {int(m.group(1)) + offset + 1}", message)


def _score_chunk(chunk: Any) -> dict[str, Any]:
    """SOFA arrays for a chunk; only the SOFA columns go through pandas (ids and others pass untouched)."""
    import pyarrow as pa

    if isinstance(chunk, pa.Table):
        sofa_cols = [c for c in chunk.column_names if c in SOFA_FRAME_COLUMNS]
        frame = chunk.select(sofa_cols).to_pandas() if sofa_cols else chunk.slice(0, 0).to_pandas()
    else:
        frame = chunk
    return score_sofa_frame_arrays(frame)


def _with_scores_arrow(chunk: Any, scored: dict[str, Any]) -> Any:
    """The chunk as an Arrow table with the score columns (sofa_missing dictionary-encoded) appended."""
    import pyarrow as pa

    if isinstance(chunk, pa.Table):
        table = chunk
    else:
        frame = chunk.copy(deep=False)
        for col in SOFA_FRAME_COLUMNS.intersection(frame.columns) - {"ventilated"}:
            # a CSV chunk without NaN reads as int: keep one float type across chunks
            frame[col] = frame[col].astype("float64")
        table = pa.Table.from_pandas(frame, preserve_index=False)
    for col in SCORE_COLUMNS:
        if col in table.column_names:
            table = table.drop_columns([col])
        table = table.append_column(col, pa.array(scored[col]))
    if "sofa_missing" in table.column_names:
        table = table.drop_columns(["sofa_missing"])
    missing = pa.DictionaryArray.from_arrays(
        pa.array(scored["sofa_missing_mask"], type=pa.uint8()), pa.array(MISSING_NAME_BY_MASK)
    )
    return table.append_column("sofa_missing", missing)


def _with_scores_frame(chunk: Any, scored: dict[str, Any]) -> Any:
    import pyarrow as pa

    frame = chunk.to_pandas() if isinstance(chunk, pa.Table) else chunk.copy()
    for col in SCORE_COLUMNS:
        frame[col] = scored[col]
    frame["sofa_missing"] = missing_names(scored["sofa_missing_mask"])
    return frame


def score_file(
    input_path: Path, output_path: Path, *, chunk_rows: int = CHUNK_ROWS, progress: bool = True
) -> int:
    """Score every patient-day of ``input_path`` into ``output_path`` chunk by chunk; returns the row count.

    The output is the input plus the SOFA columns. It is written to ``<output>.part`` and renamed when
    complete, so an error never leaves a half-written table behind.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    out_format = _format_of(output_path, "output")
    if input_path.resolve() == output_path.resolve():
        raise ImmunoSepError("the output file must differ from the input file", field="output")
    total, chunks = _read_chunks(input_path, chunk_rows)
    partial = output_path.with_name(output_path.name + ".part")
    show = progress and (total is None or total > chunk_rows)
    writer: pq.ParquetWriter | None = None
    done = 0
    with Progress(
        TextColumn("scoring SOFA"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not show,
    ) as bar:
        task = bar.add_task("rows", total=total)
        try:
            for chunk in chunks:
                try:
                    scored = _score_chunk(chunk)
                except ImmunoSepError as exc:
                    raise ImmunoSepError(
                        f"{input_path}: {_file_rows(str(exc), done)} (rows numbered from 1 after the header)"
                    ) from None
                if out_format == "parquet":
                    table = _with_scores_arrow(chunk, scored)
                    if writer is None:
                        # dictionary encoding only where it pays: not for high-cardinality float columns
                        dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
                        writer = pq.ParquetWriter(partial, table.schema, use_dictionary=dictionary)
                    else:
                        try:
                            table = table.cast(writer.schema)
                        except (pa.ArrowInvalid, ValueError) as exc:
                            raise ImmunoSepError(
                                f"{input_path}: a column changes type from row {done + 1} on ({exc}); "
                                "give that column one type, raise --chunk-rows, or write CSV"
                            ) from None
                    writer.write_table(table)
                else:
                    frame = _with_scores_frame(chunk, scored)
                    frame.to_csv(partial, mode="w" if done == 0 else "a", header=done == 0, index=False)
                done += chunk.num_rows if isinstance(chunk, pa.Table) else len(chunk)
                bar.update(task, completed=done)
        except BaseException:
            if writer is not None:
                writer.close()
            partial.unlink(missing_ok=True)
            raise
    if writer is not None:
        writer.close()
    if done == 0:
        partial.unlink(missing_ok=True)
        raise ImmunoSepError(f"{input_path} has no rows to score")
    partial.replace(output_path)
    return done


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
        rows = score_file(input_file, output_file, chunk_rows=chunk_rows, progress=not as_json)
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

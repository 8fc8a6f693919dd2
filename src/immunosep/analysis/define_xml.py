"""define.xml of the ADaM package: the submission view of :mod:`immunosep.analysis.adam` described with the
writer of :mod:`immunosep.conduct.define_xml`.

Origins are the view's (``Predecessor`` with the SDTM or ADSL variable it copies, ``Derived`` with a
method, ``Assigned``). Methods are written from the protocol's numbers: the primary endpoint and its
SOFA imputation (death scores the scale's worst value to the protocol's day, last observation carried
forward), the day-15 endpoint, SIDF reversal, the analysis populations and TRTEMFL; any other derived
variable's method is its derivation in the view or in the data dictionary
(:func:`immunosep.analysis.dictionary.variable_descriptions`). AVAL and CNSR have value-level metadata by
PARAMCD (ADSOFA, ADTTE).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from immunosep.analysis.adam import DTYPE_DEATH_WORST, DTYPE_LOCF, AdamDataset
from immunosep.analysis.dictionary import variable_descriptions
from immunosep.conduct.cdisc_ids import studyid
from immunosep.conduct.define_xml import (
    CodeListSpec,
    DatasetSpec,
    DefineSpec,
    Document,
    ItemSpec,
    Methods,
    Origin,
    Term,
    ValueListSpec,
    WhereClause,
    codelist_terms,
    ct_standard,
    distinct_text,
    ig_standard,
    lookup,
    measure,
    oid_part,
)
from immunosep.conduct.sdtm.define_xml import CODELISTS
from immunosep.protocol.schema import Protocol

ADAMIG_VERSION = "1.3"
STANDARDS = (ig_standard("ADaMIG", ADAMIG_VERSION), ct_standard("ADaM"), ct_standard("SDTM"))
#: view structure -> (def:Class, def:SubClass)
CLASSES = {
    "ADSL": ("SUBJECT LEVEL ANALYSIS DATASET", ""),
    "BDS": ("BASIC DATA STRUCTURE", ""),
    "OCCDS": ("OCCURRENCE DATA STRUCTURE", "ADVERSE EVENT"),
}
STRUCTURES = {
    "ADSL": "One record per subject",
    "ADSOFA": "One record per subject per analysis day per derivation type",
    "ADTTE": "One record per subject per parameter",
    "ADAE": "One record per adverse event per subject",
}
#: ADSL predecessors whose view ``source`` is an internal column: the SDTM variable they copy.
PREDECESSORS = {
    "ADSL.SUBJID": "DM.SUBJID",
    "ADSL.SITEID": "DM.SITEID",
    "ADSL.STRATUM": "SUPPDM.QVAL where QNAM = STRATUM (as the protocol's stratum code)",
    "ADSL.ARMCD": "DM.ARMCD",
    "ADSL.ARM": "DM.ARM",
    "ADSL.AGE": "DM.AGE",
    "ADSL.SEX": "DM.SEX",
    "ADSL.INFTYPE": "SUPPDM.QVAL where QNAM = INFTYPE (as the protocol's infection code)",
}
#: Collected values the SDTM export does not carry: the form they come from.
NOT_IN_SDTM = {
    "ADSL.CCI": "Charlson comorbidity index from the screening form (not in the SDTM export)",
    "ADSL.APACHE2": "APACHE II score from the screening form (not in the SDTM export)",
    "ADSL.WEIGHTBL": "Body weight from the screening form (not in the SDTM export)",
    "ADSL.INF15": "State of the infection on day 15 from the outcome form (not in the SDTM export)",
}
#: variable -> codelist key (keys of conduct.sdtm.define_xml.CODELISTS carry CDISC codes; others are
#: sponsor-defined lists of the values used)
VARIABLE_CODELISTS = {
    "SEX": "SEX",
    "AGEU": "AGEU",
    "AESER": "NY",
    "AEEXPECT": "NY",
    "PARAMCD": "PARAMCD",
    "DTYPE": "DTYPE",
    "ARMCD": "ARMCD",
    "ARM": "ARM",
    "TRT01P": "TRT",
    "TRT01A": "TRT",
    "TRTP": "TRT",
    "TRTA": "TRT",
    "STRATUM": "STRATUM",
    "INFTYPE": "INFTYPE",
    "INF15": "INF15",
    "EVNTDESC": "EVNTDESC",
    "CNSDTDSC": "CNSDTDSC",
    "SRCDOM": "SRCDOM",
    "SRCVAR": "SRCVAR",
    "AEREL": "AEREL",
    "ARELGR1": "ARELGR1",
    "AEDECOD": "MEDDRA",
    "AEBODSYS": "MEDDRA",
    "AESOC": "MEDDRA",
}
ADAM_CODELISTS: dict[str, tuple[str, str, tuple[Term, ...]]] = {
    "DTYPE": ("Derivation Type", "C81224", (Term(DTYPE_LOCF), Term(DTYPE_DEATH_WORST, extended=True))),
}


def _methods(protocol: Protocol) -> dict[str, tuple[str, str, str]]:
    """Method key -> (name, type, description) of the derivations a reviewer asks about, from the protocol."""
    p, d15, sidf = protocol.endpoints.primary, protocol.endpoints.sofa_d15, protocol.sidf
    desc = variable_descriptions(protocol)
    imputation = (
        f"The worst SOFA of each study day as recorded (daily CRF, RS SOFA0107). A patient who dies scores "
        f"{p.death_score:g} on every day from the day of death to day {p.death_imputed_until_day} "
        f"(DTYPE = {DTYPE_DEATH_WORST}; an observed value on the day of death is kept as a separate record "
        f"with ANL01FL empty). A patient discharged or lost to follow-up before day {p.window_last_day}: the "
        f"last recorded SOFA is carried forward to the end of the window (DTYPE = {DTYPE_LOCF}). "
        "ANL01FL = Y marks the records the endpoint uses (clinical.sofa_endpoint.sofa_decrease)."
    )
    mean = (
        "Mean of ADSOFA.AVAL (ANL01FL = Y) over study days {a}-{b}, with the SOFA imputation rule (death "
        f"scores {p.death_score:g}, last observation carried forward)"
    )
    sidf_text = desc["sidf_reversal"][2]
    return {
        "SOFAIMP": ("SOFA imputation (death = worst score, LOCF)", "Imputation", imputation),
        "MSOFAPW": (
            "Mean SOFA, primary window",
            "Computation",
            mean.format(a=p.window_first_day, b=p.window_last_day),
        ),
        "DSOFAPW": (
            "SOFA decrease, primary window",
            "Computation",
            "SOFABL - MSOFAPW (empty when SOFABL is missing)",
        ),
        "PRIMFL": (
            "Primary endpoint",
            "Computation",
            f"{p.name}: Y when DSOFAPW >= {p.min_decrease:g}; N otherwise, including a missing baseline SOFA "
            f"(SOFABL: day {p.baseline_day}, before the first dose)",
        ),
        "MSOFAD15": (
            "Mean SOFA, day-15 window",
            "Computation",
            mean.format(a=d15.window_first_day, b=d15.window_last_day),
        ),
        "DSOFAD15": ("SOFA decrease, day-15 window", "Computation", "SOFABL - MSOFAD15"),
        "D15EPFL": (
            "Day-15 SOFA endpoint",
            "Computation",
            f"Y when DSOFAD15 >= {d15.min_decrease:g}; N otherwise",
        ),
        "SIDFFL": ("SIDF population", "Computation", "Y when " + desc["sidffl"][2]),
        "SIDFRVFL": ("SIDF reversal", "Computation", f"Y when reversed: {sidf_text}"),
        "SIDFRVDY": (
            "Day of SIDF reversal",
            "Computation",
            f"Study day of the first draw of the confirming run (at least {sidf.min_confirming_draws} serial "
            "draws to the last one meeting the criterion)",
        ),
        "TRTEMFL": (
            "Treatment emergent",
            "Computation",
            "Y when the subject was dosed (ADSL.TRTSDT not missing) and ASTDT >= ADSL.TRTSDT; empty otherwise",
        ),
        "RANDFL": ("Randomized population", "Computation", "Y for every randomized subject"),
        "ITTFL": (
            "Intent-to-treat population",
            "Computation",
            "Y when randomized and consent was not withdrawn with removal of data; N otherwise",
        ),
        "FASFL": ("Full analysis set", "Computation", "= ITTFL"),
        "SAFFL": (
            "Safety population",
            "Computation",
            "Y when ITTFL = Y and at least one injection was given (TRTSDT not missing); N otherwise",
        ),
        "SENSFL": ("Sensitivity population", "Computation", "Y when " + desc["sensfl"][2]),
    }


#: variable (any dataset, or DATASET.VARIABLE) -> method key of :func:`_methods`
METHOD_KEYS = {
    "ADSOFA.AVAL": "SOFAIMP",
    "ADSOFA.DTYPE": "SOFAIMP",
    "ADSOFA.ANL01FL": "SOFAIMP",
    "IMPDAYS": "SOFAIMP",
    "LOCFFL": "SOFAIMP",
    "MSOFAPW": "MSOFAPW",
    "DSOFAPW": "DSOFAPW",
    "ADSL.PRIMFL": "PRIMFL",
    "MSOFAD15": "MSOFAD15",
    "DSOFAD15": "DSOFAD15",
    "D15EPFL": "D15EPFL",
    "SIDFFL": "SIDFFL",
    "SIDFRVFL": "SIDFRVFL",
    "SIDFRVDY": "SIDFRVDY",
    "TRTEMFL": "TRTEMFL",
    "RANDFL": "RANDFL",
    "ITTFL": "ITTFL",
    "FASFL": "FASFL",
    "SAFFL": "SAFFL",
    "SENSFL": "SENSFL",
}


def _tte_method(paramcd: str, variable: str) -> tuple[str, str]:
    """(name, description) of ADTTE AVAL or CNSR for one parameter."""
    if paramcd.startswith("OS") and paramcd[2:].isdigit():
        day = int(paramcd[2:])
        if variable == "AVAL":
            return (
                f"{paramcd} time",
                f"Study day of death when on or before day {day}; otherwise the last day known alive, at most "
                f"day {day} (days from STARTDT, STARTDT = day 1)",
            )
        return (f"{paramcd} censoring", f"0 when the subject died on or before day {day}; 1 otherwise")
    if variable == "AVAL":
        return (
            f"{paramcd} time",
            "Study day of SIDF reversal (ADSL.SIDFRVDY) for a subject who reversed; otherwise the day of the last "
            "draw of the stratum's marker (ADSL.SIDFLDDY); SIDF population only",
        )
    return (f"{paramcd} censoring", "0 when ADSL.SIDFRVFL = Y; 1 otherwise")


def adam_define(
    view: Mapping[str, AdamDataset],
    frames: Mapping[str, pd.DataFrame],
    protocol: Protocol,
    *,
    blinded: bool = False,
    documents: tuple[Document, ...] = (),
) -> DefineSpec:
    """The define.xml of the ADaM package ``view`` (name -> dataset), whose files hold ``frames`` (name ->
    the values as written, ``analysis.writers.xpt_frame``)."""
    study = studyid(protocol)
    desc = variable_descriptions(protocol)
    special = _methods(protocol)
    methods = Methods()
    comments: dict[str, str] = {}
    codelist_values: dict[str, set[str]] = {}
    decodes: dict[str, dict[str, str]] = {}
    value_lists: list[ValueListSpec] = []
    datasets: list[DatasetSpec] = []
    if blinded:
        comments["COM.MASKED"] = "Blinded package: the value is BLINDED STUDY TREATMENT for every subject"

    def method_of(ds: AdamDataset, name: str) -> str:
        key = METHOD_KEYS.get(lookup(METHOD_KEYS, ds.name, name))
        if key:
            title, kind, text = special[key]
            return methods.add(f"MT.{key}", title, text, kind)
        v = ds.variable(name)
        text = v.derivation or (desc[v.source][2] if v.source in desc else "") or v.label
        if v.source and v.source not in desc and "." in v.source and not v.derivation:
            text = f"From {v.source}"
        return methods.add(f"MT.{ds.name}.{name}", f"{ds.name}.{name}", text)

    def origin_of(ds: AdamDataset, name: str) -> Origin:
        v = ds.variable(name)
        key = f"{ds.name}.{name}"
        if v.origin == "Predecessor":
            text = PREDECESSORS.get(key) or NOT_IN_SDTM.get(key) or v.source
            return Origin("Predecessor", description=text)
        if v.origin == "Assigned":
            return Origin("Assigned", "Sponsor")
        return Origin("Derived")

    def codelist_of(ds: AdamDataset, name: str, values: pd.Series, frame: pd.DataFrame) -> str:
        key = VARIABLE_CODELISTS.get(name) or ("NY" if name.endswith("FL") else "")
        used = distinct_text(values)
        if not key or not used:
            return ""
        codelist_values.setdefault(key, set()).update(used)
        if key == "PARAMCD" and "PARAM" in frame:
            pairs = frame[["PARAMCD", "PARAM"]].drop_duplicates().itertuples(index=False)
            decodes.setdefault(key, {}).update({str(a): str(b) for a, b in pairs})
        return f"CL.{key}"

    def item(
        ds: AdamDataset, frame: pd.DataFrame, name: str, values: pd.Series, oid: str, key_seq: int | None
    ) -> ItemSpec:
        v = ds.variable(name)
        m = measure(values, v.kind, name)
        complete = bool(values.notna().all() and (v.kind == "Num" or values.astype(str).ne("").all()))
        masked = blinded and name in ("TRT01P", "TRT01A", "TRTP", "TRTA")
        return ItemSpec(
            oid=oid,
            name=name,
            label=v.label,
            data_type=m.data_type,
            length=m.length,
            significant_digits=m.significant_digits,
            origin=origin_of(ds, name),
            codelist=codelist_of(ds, name, values, frame),
            method=method_of(ds, name) if v.origin == "Derived" else "",
            comment="COM.MASKED" if masked else "",
            display_format=v.fmt,
            mandatory=(key_seq is not None or name in ("PARAMCD", "PARAM")) and complete,
            key_sequence=key_seq,
            has_no_data=m.has_no_data,
        )

    for key_, ds in view.items():
        frame = frames[key_]
        items = []
        for v in ds.variables:
            seq = ds.keys.index(v.name) + 1 if v.name in ds.keys else None
            it = item(ds, frame, v.name, frame[v.name], f"IT.{ds.name}.{v.name}", seq)
            if ds.structure == "BDS" and v.name in ("AVAL", "CNSR") and "PARAMCD" in frame:
                vl = _value_list(ds, frame, v.name, item, methods)
                if vl is not None:
                    value_lists.append(vl)
                    it = ItemSpec(**{**it.__dict__, "value_list": vl.oid})
            items.append(it)
        cls, sub = CLASSES[ds.structure]
        if ds.name == "ADTTE":
            sub = "TIME-TO-EVENT"
        datasets.append(
            DatasetSpec(
                name=ds.name,
                label=ds.label,
                structure=STRUCTURES.get(ds.name, ds.structure),
                class_name=cls,
                subclass=sub,
                purpose="Analysis",
                href=f"{ds.name.lower()}.xpt",
                items=tuple(items),
                repeating=ds.structure != "ADSL",
                standard_oid="STD.ADAMIG",
            )
        )
    codelists = []
    for key in sorted(codelist_values):
        if key == "MEDDRA":
            codelists.append(
                CodeListSpec("CL.MEDDRA", "MedDRA", dictionary="MedDRA", version="not recorded by the store")
            )
            continue
        cname, nci, known = (
            ADAM_CODELISTS.get(key) or CODELISTS.get(key) or (f"{key} (sponsor-defined)", "", ())
        )
        terms = codelist_terms(sorted(codelist_values[key]), known, decodes.get(key))
        standard = ("STD.CT.ADAM" if key in ADAM_CODELISTS else "STD.CT.SDTM") if nci else ""
        codelists.append(CodeListSpec(f"CL.{key}", cname, "text", terms, nci, standard_oid=standard))
    return DefineSpec(
        study_oid=study,
        study_name=study,
        study_description=protocol.trial.title,
        protocol_name=protocol.trial.registration or study,
        mdv_name=f"ADAM-{'BLINDED' if blinded else 'UNBLINDED'}",
        mdv_description=f"ADaMIG {ADAMIG_VERSION} analysis datasets of {study}"
        + (" (blinded package: no arm variables, treatment masked)" if blinded else ""),
        standards=STANDARDS,
        datasets=tuple(datasets),
        codelists=tuple(codelists),
        methods=methods.specs(),
        comments=comments,
        value_lists=tuple(value_lists),
        documents=documents,
    )


#: (dataset, its frame, variable, values, ItemDef OID, KeySequence) -> the measured item
MakeItem = Callable[[AdamDataset, pd.DataFrame, str, pd.Series, str, "int | None"], ItemSpec]


def _value_list(
    ds: AdamDataset, frame: pd.DataFrame, name: str, item: MakeItem, methods: Methods
) -> ValueListSpec | None:
    """AVAL (or CNSR) by PARAMCD: one entry per parameter in the data, each with its own method."""
    entries = []
    for code in distinct_text(frame["PARAMCD"]):
        rows = frame.loc[frame["PARAMCD"] == code, name]
        where = WhereClause(f"WC.{ds.name}.PARAMCD.{oid_part(code)}", f"IT.{ds.name}.PARAMCD", (code,))
        it = item(ds, frame, name, rows, f"IT.{ds.name}.{name}.{oid_part(code)}", None)
        if ds.name == "ADTTE":
            title, text = _tte_method(code, name)
            it = ItemSpec(
                **{
                    **it.__dict__,
                    "method": methods.add(f"MT.ADTTE.{name}.{oid_part(code)}", title, text),
                }
            )
        entries.append((where, it))
    return ValueListSpec(f"VL.{ds.name}.{name}", tuple(entries)) if entries else None

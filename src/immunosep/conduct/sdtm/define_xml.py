"""define.xml of the SDTM export: the metadata of :mod:`immunosep.conduct.sdtm.metadata` plus what the data
show (types, lengths, the terms used), written by :func:`immunosep.conduct.define_xml.write_define`.

What this module adds to the metadata, each in one table:

- :data:`CLASSES` - the SDTM class and structure of every dataset;
- :data:`CODELISTS` and :data:`VARIABLE_CODELISTS` - which variables take controlled terms, with the CDISC
  codelist and term C-codes (NCI EVS) where this module knows them; a sponsor-defined list otherwise,
  MedDRA as an external dictionary, ISO 3166 for COUNTRY;
- :data:`METHODS` - how each derived variable is computed (a Derived variable without a method here gets a
  generic one, which the tests refuse);
- value-level metadata where a result's meaning depends on a test code: LB by LBTESTCD, RS (the SOFA
  items) by RSTESTCD and the SUPP-- QVAL by QNAM.

Lookups take the most specific key first: ``"DM.ARMNRS"`` (dataset and variable), ``"ARMNRS"`` (the
variable in any dataset), ``"--SEQ"`` (the domain prefix replaced by ``--``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from immunosep.conduct.cdisc_ids import studyid
from immunosep.conduct.define_xml import (
    CodeListSpec,
    DatasetSpec,
    DefineSpec,
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
from immunosep.conduct.sdtm import KEYS
from immunosep.conduct.sdtm.design import SDTMIG_VERSION
from immunosep.conduct.sdtm.metadata import DATASETS, Dataset, Variable
from immunosep.protocol.schema import Protocol

STANDARDS = (ig_standard("SDTMIG", SDTMIG_VERSION), ct_standard("SDTM"))

#: dataset -> (def:Class, def:Structure)
CLASSES: dict[str, tuple[str, str]] = {
    "DM": ("SPECIAL PURPOSE", "One record per subject"),
    "DS": ("EVENTS", "One record per disposition status or protocol milestone per subject"),
    "EX": ("INTERVENTIONS", "One record per injection given per subject"),
    "EC": ("INTERVENTIONS", "One record per scheduled injection not given per subject"),
    "PR": ("INTERVENTIONS", "One record per organ support per study day per subject"),
    "AE": ("EVENTS", "One record per adverse event per subject"),
    "LB": ("FINDINGS", "One record per lab test per specimen per subject"),
    "RS": ("FINDINGS", "One record per SOFA item per study day per subject"),
    "SE": ("SPECIAL PURPOSE", "One record per actual element per subject"),
    "SV": ("SPECIAL PURPOSE", "One record per actual visit per subject"),
    "TA": ("TRIAL DESIGN", "One record per planned element per arm"),
    "TE": ("TRIAL DESIGN", "One record per planned element"),
    "TV": ("TRIAL DESIGN", "One record per planned visit per arm"),
    "TI": ("TRIAL DESIGN", "One record per inclusion/exclusion criterion"),
    "TS": ("TRIAL DESIGN", "One record per trial summary parameter value"),
    "SUPPDM": ("RELATIONSHIP", "One record per supplemental qualifier per subject"),
    "SUPPEX": ("RELATIONSHIP", "One record per supplemental qualifier per EX record"),
    "SUPPAE": ("RELATIONSHIP", "One record per supplemental qualifier per AE record"),
}

_NY = (Term("Y", "Yes", "C49488"), Term("N", "No", "C49487"))
#: codelist key -> (name, codelist C-code, known terms). Terms list the values the export writes.
CODELISTS: dict[str, tuple[str, str, tuple[Term, ...]]] = {
    "NY": ("No Yes Response", "C66742", _NY),
    "SEX": (
        "Sex",
        "C66731",
        (Term("F", "Female", "C16576"), Term("M", "Male", "C20197"), Term("U", "Unknown", "C17998")),
    ),
    "AGEU": ("Age Unit", "C66781", (Term("YEARS", nci="C29848"),)),
    "DOMAIN": ("SDTM Domain Abbreviation", "C66734", ()),
    "EPOCH": (
        "Epoch",
        "C99079",
        (Term("SCREENING", nci="C48262"), Term("TREATMENT", nci="C101526"), Term("FOLLOW-UP", nci="C99158")),
    ),
    "DSCAT": (
        "Category for Disposition Event",
        "C74558",
        (Term("DISPOSITION EVENT", nci="C74590"), Term("PROTOCOL MILESTONE", nci="C74588")),
    ),
    "DSDECOD": (
        "Completion/Reason for Non-Completion; Protocol Milestone",
        "C66727",
        (
            Term("COMPLETED", nci="C25250"),
            Term("DEATH", nci="C28554"),
            Term("LOST TO FOLLOW-UP", nci="C48227"),
            Term("WITHDRAWAL BY SUBJECT", nci="C49634"),
            Term("INFORMED CONSENT OBTAINED", nci="C16735"),
            Term("RANDOMIZED", nci="C25196"),
        ),
    ),
    "ROUTE": (
        "Route of Administration",
        "C66729",
        (Term("INTRAVENOUS", nci="C38276"), Term("SUBCUTANEOUS", nci="C38299")),
    ),
    "FRM": ("Pharmaceutical Dosage Form", "C66726", (Term("INJECTION", nci="C42946"),)),
    "UNIT": (
        "Unit",
        "C71620",
        (Term("mg", nci="C28253"), Term("ug", nci="C48152"), Term("ng/mL", nci="C67306")),
    ),
    "SPECTYPE": ("Specimen Type", "C78734", (Term("BLOOD", nci="C12434"),)),
    "ND": ("Not Done", "C66789", (Term("NOT DONE", nci="C49484"),)),
    "LBTESTCD": (
        "Laboratory Test Code",
        "C65047",
        (Term("FERRITIN", nci="C74737"), Term("HLADRMON", extended=True)),
    ),
    "LBTEST": (
        "Laboratory Test Name",
        "C67154",
        (Term("Ferritin", nci="C74737"), Term("HLA-DR Receptors per Monocyte", extended=True)),
    ),
    "IECAT": (
        "Category for Inclusion/Exclusion",
        "C66797",
        (Term("EXCLUSION", nci="C25370"), Term("INCLUSION", nci="C25532")),
    ),
    "TSPARMCD": ("Trial Summary Parameter Test Code", "C66738", ()),
    "TSPARM": ("Trial Summary Parameter Test Name", "C67152", ()),
    "COUNTRY": ("Country", "", ()),
    "MEDDRA": ("MedDRA", "", ()),
    "MEDDRA_CODE": ("MedDRA code", "", ()),
}
#: variable -> codelist key. A key not in :data:`CODELISTS` is a sponsor-defined list of the values used.
VARIABLE_CODELISTS: dict[str, str] = {
    "DOMAIN": "DOMAIN",
    "RDOMAIN": "DOMAIN",
    "SEX": "SEX",
    "AGEU": "AGEU",
    "DTHFL": "NY",
    "EPOCH": "EPOCH",
    "COUNTRY": "COUNTRY",
    "ARMCD": "ARMCD",
    "ACTARMCD": "ARMCD",
    "ARM": "ARM",
    "ACTARM": "ARM",
    "ARMNRS": "ARMNRS",
    "DSCAT": "DSCAT",
    "DSDECOD": "DSDECOD",
    "--ROUTE": "ROUTE",
    "--DOSFRM": "FRM",
    "EXDOSU": "UNIT",
    "LBORRESU": "UNIT",
    "LBSTRESU": "UNIT",
    "--PRESP": "NY",
    "--OCCUR": "NY",
    "--LOBXFL": "NY",
    "AESER": "NY",
    "AEREL": "AEREL",
    "AEDECOD": "MEDDRA",
    "AESOC": "MEDDRA",
    "AEBODSYS": "MEDDRA",
    "AEPTCD": "MEDDRA_CODE",
    "AESOCCD": "MEDDRA_CODE",
    "AEBDSYCD": "MEDDRA_CODE",
    "EXTRT": "EXTRT",
    "ECTRT": "EXTRT",
    "EXADJ": "EXADJ",
    "PRTRT": "PRTRT",
    "PRCAT": "PRCAT",
    "LBTESTCD": "LBTESTCD",
    "LBTEST": "LBTEST",
    "LBCAT": "LBCAT",
    "LBSPEC": "SPECTYPE",
    "RSTESTCD": "RSTESTCD",
    "RSTEST": "RSTEST",
    "RSCAT": "RSCAT",
    "RSSTAT": "ND",
    "RSREASND": "RSREASND",
    "ETCD": "ETCD",
    "ELEMENT": "ELEMENT",
    "IECAT": "IECAT",
    "TSPARMCD": "TSPARMCD",
    "TSPARM": "TSPARM",
    "TSVALNF": "TSVALNF",
    "QNAM": "QNAM",
    "IDVAR": "IDVAR",
    "QORIG": "QORIG",
}
#: codelist key -> the variable whose value decodes a code (a CodeListItem with Decode).
DECODED_BY = {
    "ARMCD": "ARM",
    "LBTESTCD": "LBTEST",
    "RSTESTCD": "RSTEST",
    "TSPARMCD": "TSPARM",
    "ETCD": "ELEMENT",
}

_STUDY_DAY = (
    "Study day",
    "SDTMIG study day of the date part of the record's --DTC: (date - RFSTDTC date) + 1 on or after the "
    "reference start, (date - RFSTDTC date) before it; there is no day 0",
)
_FROM_DAY = (
    "Date from study day",
    "The CRF records a study day: date = RFSTDTC date + (study day - 1) (study day 1 is the day of the first "
    "dose, or of randomization for a subject never dosed)",
)
_DOSE_TIME = (
    "Injection time",
    "The dosing log records study day and scheduled hour: time = first dose time + hours of the schedule "
    "since the first dose's slot ((day - 1) x 24 + hour), ISO 8601 to the second, UTC",
)
_SEQ = ("Sequence number", "Consecutive integer within USUBJID in the order of the domain's records by date")
_VISIT = ("Visit from study day", "VISITNUM = the study day of the record; VISIT = 'DAY ' followed by it")
#: variable -> (method name, description), by the lookup rule of this module. Derived variables only.
METHODS: dict[str, tuple[str, str]] = {
    "USUBJID": (
        "USUBJID",
        "STUDYID, a hyphen and SUBJID (the pseudonym SITE-NUMBER): conduct.cdisc_ids.usubjid",
    ),
    "DM.RFSTDTC": (
        "Reference start",
        "Date/time of the first injection given; the randomization time for a subject never dosed",
    ),
    "DM.RFENDTC": (
        "Reference end",
        "Date of death, else the last day known alive (RFSTDTC date + study day - 1)",
    ),
    "DM.RFXSTDTC": ("First exposure", "Date/time of the first injection given (dosing log)"),
    "DM.RFXENDTC": ("Last exposure", "Date/time of the last injection given (see the injection time rule)"),
    "DM.RFPENDTC": (
        "End of participation",
        "Time of the consent withdrawal, else the date of death or the last day known alive",
    ),
    "DM.DTHDTC": ("Date of death", "RFSTDTC date + (study day of death - 1), from the outcome form"),
    "DM.DTHFL": ("Death flag", "Y when the outcome form records a day of death, else empty"),
    "DM.ACTARMCD": (
        "Actual arm",
        "ARMCD when the subject was given at least one injection; empty otherwise (ARMNRS says why)",
    ),
    "DM.ACTARM": (
        "Actual arm",
        "ARM when the subject was given at least one injection; empty otherwise (ARMNRS says why)",
    ),
    "DM.ARMNRS": ("Arm null reason", "ASSIGNED, NOT TREATED for a randomized subject never dosed"),
    "AESEQ": (
        "AE sequence",
        "Consecutive integer within USUBJID by onset day, then by the record's id (conduct.cdisc_ids.aeseq_order); ADaM ADAE.AESEQ uses the same rule",
    ),
    "--SEQ": _SEQ,
    "EPOCH": (
        "Epoch",
        "SCREENING before RFSTDTC; TREATMENT from RFSTDTC to the last injection given (to the end of the planned treatment days for a subject never dosed); FOLLOW-UP after it",
    ),
    "--DY": _STUDY_DAY,
    "SESTDY": _STUDY_DAY,
    "SEENDY": _STUDY_DAY,
    "SVSTDY": _STUDY_DAY,
    "SVENDY": _STUDY_DAY,
    "EX.EXSTDTC": _DOSE_TIME,
    "EX.EXENDTC": ("Injection time", "= EXSTDTC (an injection is given at once)"),
    "EC.ECSTDTC": _DOSE_TIME,
    "EX.EXADJ": (
        "Renal dose adjustment",
        "RENAL IMPAIRMENT when the IV dose was halved because the creatinine clearance (Cockcroft-Gault) was below the protocol's threshold",
    ),
    "PR.PRSTDTC": _FROM_DAY,
    "AE.AESTDTC": _FROM_DAY,
    "AE.AEENDTC": _FROM_DAY,
    "RS.RSDTC": _FROM_DAY,
    "SV.SVSTDTC": _FROM_DAY,
    "SV.SVENDTC": _FROM_DAY,
    "VISITNUM": _VISIT,
    "VISIT": _VISIT,
    "LBSTRESC": ("Standard result", "= LBORRES: results are collected in the standard units"),
    "LBSTRESN": ("Standard result", "LBSTRESC as a number"),
    "LBLOBXFL": (
        "Baseline (LB)",
        "Y on the last non-missing result of each test drawn at or before the first dose",
    ),
    "RS.RSORRES": (
        "SOFA item",
        "The SOFA organ score of the day (Vincent 1996, clinical.sofa) from the daily CRF inputs, or their sum for SOFA0107; empty when the input was not recorded",
    ),
    "RSSTRESC": ("Standard result", "= RSORRES"),
    "RSSTRESN": ("Standard result", "RSSTRESC as a number"),
    "RSSTAT": (
        "Not done",
        "NOT DONE when the CRF input of the organ was not recorded (it scores 0 in the total)",
    ),
    "RSREASND": ("Reason not done", "INPUT NOT RECORDED when RSSTAT is NOT DONE"),
    "RSLOBXFL": (
        "Baseline (RS)",
        "Y on the records of the protocol's baseline day (day 1, scored before the first dose)",
    ),
    "SE.SESTDTC": (
        "Element start",
        "Screening: time of screening; treatment: first injection; follow-up: last injection",
    ),
    "SE.SEENDTC": (
        "Element end",
        "Screening: RFSTDTC; treatment: last injection; follow-up: date of death or last day known alive",
    ),
    "SVOCCUR": ("Visit occurred", "Y for a planned visit day with a record in LB, RS or PR"),
    "IDVARVAL": ("Parent record", "The --SEQ of the parent record (empty for SUPPDM)"),
    "QVAL": ("Qualifier value", "See the value-level metadata by QNAM"),
    "SUPPDM.QVAL.STRATUM": (
        "Immune stratum",
        "The protocol's classification rule (clinical.immune) applied to the baseline ferritin and monocyte HLA-DR: MALS, immunoparalysis",
    ),
    "SUPPAE.QVAL.AESUSAR": (
        "SUSAR",
        "Y when the event is serious, related (probably or possibly) and unexpected",
    ),
}
GENERIC_METHOD = "Derived by the export from the collected data (docs/conduct.md)"
#: variable -> comment
COMMENTS: dict[str, str] = {
    "RACE": "Not collected by the ImmunoSep forms: present and empty",
    "COUNTRY": "ISO 3166-1 alpha-3 of the subject's site (sites.country, set by the administrator or from the protocol's countries); empty for a site not yet placed",
    "AEACN": "Collected on the adverse event form from revision 0005; empty for events recorded before it",
    "AEENDTC": "Empty while the event goes on, and for events recorded before revision 0005",
    "RSTESTCD": "SOFA0101-SOFA0107 follow the naming pattern of CDISC's QRS terminology; not verified against CDISC's published SOFA codes",
    "EXTRT": "Masked (BLINDED STUDY TREATMENT) in a blinded export",
    "ECTRT": "Masked (BLINDED STUDY TREATMENT) in a blinded export",
}
#: dataset -> (test code variable, result variables described per code)
VALUE_LEVEL: dict[str, tuple[str, tuple[str, ...]]] = {
    "LB": ("LBTESTCD", ("LBORRES", "LBORRESU", "LBSTRESC", "LBSTRESN", "LBSTRESU")),
    "RS": ("RSTESTCD", ("RSORRES", "RSSTRESC", "RSSTRESN")),
    "SUPPDM": ("QNAM", ("QVAL",)),
    "SUPPEX": ("QNAM", ("QVAL",)),
    "SUPPAE": ("QNAM", ("QVAL",)),
}
#: variables whose presence the standard requires (Mandatory = Yes when, moreover, no value is missing)
REQUIRED = {
    "STUDYID", "DOMAIN", "USUBJID", "SUBJID", "SITEID", "--SEQ", "--TESTCD", "--TEST", "--TRT", "--TERM",
    "--DECOD", "QNAM", "QLABEL", "QVAL", "QORIG", "RDOMAIN", "ETCD", "ELEMENT", "TAETORD", "VISITNUM",
    "TSPARMCD", "TSPARM", "IETESTCD", "IETEST", "IECAT", "DSCAT", "ARMCD", "ARM",
}  # fmt: skip


def _origin(v: Variable, dataset: str) -> Origin:
    if v.origin == "Collected":
        return Origin("Collected", "Vendor" if dataset == "LB" else "Investigator")
    if v.origin in ("Assigned", "Protocol"):
        return Origin(v.origin, "Sponsor")
    return Origin(v.origin)


def _method_oid(key: str) -> str:
    return "MT." + oid_part(key.replace("--", "XX"))


def sdtm_define(frames: Mapping[str, pd.DataFrame], protocol: Protocol, *, blinded: bool) -> DefineSpec:
    """The define.xml of one SDTM export (``frames``: dataset -> the frame written)."""
    study = studyid(protocol)
    codelist_values: dict[str, set[str]] = {}
    codelist_kinds: dict[str, str] = {}
    decodes: dict[str, dict[str, str]] = {}
    methods = Methods()
    comments: dict[str, str] = {}
    datasets: list[DatasetSpec] = []
    value_lists: list[ValueListSpec] = []

    def method_for(key: str, dataset: str, name: str) -> str:
        if key:
            title, text = METHODS[key]
            return methods.add(_method_oid(key), title, text)
        return methods.add(f"MT.{dataset}.{name}", f"{dataset}.{name}", GENERIC_METHOD)

    def codelist_for(dataset: str, name: str, values: pd.Series, data_type: str) -> str:
        key = VARIABLE_CODELISTS.get(lookup(VARIABLE_CODELISTS, dataset, name), "")
        used = distinct_text(values)
        if not key or not used:
            return ""
        codelist_values.setdefault(key, set()).update(used)
        codelist_kinds[key] = data_type
        decode_var = DECODED_BY.get(key)
        if decode_var and decode_var in frames[dataset]:
            pairs = frames[dataset][[name, decode_var]].drop_duplicates()
            decodes.setdefault(key, {}).update(
                {str(a): str(b) for a, b in pairs.itertuples(index=False) if a}
            )
        return f"CL.{key}"

    def comment_for(name: str) -> str:
        if name in COMMENTS and (name not in ("EXTRT", "ECTRT") or blinded):
            oid = f"COM.{name}"
            comments[oid] = COMMENTS[name]
            return oid
        return ""

    def item(
        spec: Dataset, v: Variable, values: pd.Series, oid: str, key_seq: int | None, method_key: str = ""
    ) -> ItemSpec:
        m = measure(values, v.type, v.name)
        required = lookup({k: 1 for k in REQUIRED}, spec.name, v.name) != ""
        method = ""
        if v.origin == "Derived":
            method = method_for(method_key or lookup(METHODS, spec.name, v.name), spec.name, v.name)
        return ItemSpec(
            oid=oid,
            name=v.name,
            label=v.label,
            data_type=m.data_type,
            length=m.length,
            significant_digits=m.significant_digits,
            origin=_origin(v, spec.name),
            codelist=codelist_for(spec.name, v.name, values, m.data_type),
            method=method,
            comment=comment_for(v.name),
            mandatory=required and _complete(values, v.type),
            key_sequence=key_seq,
            has_no_data=m.has_no_data,
        )

    for name, df in frames.items():
        spec = DATASETS[name]
        keys = ["STUDYID", *(k for k in KEYS.get(name, ()) if k != "STUDYID")]
        items = []
        for column in df.columns:
            v = spec.variable(column)
            seq = keys.index(column) + 1 if column in keys else None
            it = item(spec, v, df[column], f"IT.{name}.{column}", seq, "")
            vl = _value_list(spec, v, df, item) if column in VALUE_LEVEL.get(name, ("", ()))[1] else None
            if vl is not None:
                value_lists.append(vl)
                it = ItemSpec(**{**it.__dict__, "value_list": vl.oid})
            items.append(it)
        cls, structure = CLASSES[name]
        datasets.append(
            DatasetSpec(
                name=name,
                label=spec.label,
                structure=structure,
                class_name=cls,
                purpose="Tabulation",
                href=f"{name.lower()}.xpt",
                items=tuple(items),
                domain=_domain(name),
                repeating=name != "DM",
                reference_data=cls == "TRIAL DESIGN",
                standard_oid="STD.SDTMIG",
            )
        )
    codelists = []
    for key in sorted(codelist_values):
        cname, nci, known = CODELISTS.get(key, (f"{key} (sponsor-defined)", "", ()))
        if key in ("MEDDRA", "MEDDRA_CODE"):
            codelists.append(
                CodeListSpec(
                    f"CL.{key}",
                    cname,
                    codelist_kinds[key],
                    dictionary="MedDRA",
                    version="not recorded by the store",
                )
            )
            continue
        if key == "COUNTRY":
            codelists.append(
                CodeListSpec(f"CL.{key}", cname, "text", dictionary="ISO 3166", version="ISO 3166-1 alpha-3")
            )
            continue
        terms = codelist_terms(sorted(codelist_values[key]), known, decodes.get(key))
        codelists.append(
            CodeListSpec(
                f"CL.{key}", cname, codelist_kinds[key], terms, nci, standard_oid="STD.CT.SDTM" if nci else ""
            )
        )
    return DefineSpec(
        study_oid=study,
        study_name=study,
        study_description=protocol.trial.title,
        protocol_name=protocol.trial.registration or study,
        mdv_name=f"SDTM-{'BLINDED' if blinded else 'UNBLINDED'}",
        mdv_description=(
            f"SDTMIG {SDTMIG_VERSION} tabulation datasets of {study}"
            + (" (blinded export: no arm variables, treatment masked)" if blinded else " (unblinded export)")
        ),
        standards=STANDARDS,
        datasets=tuple(datasets),
        codelists=tuple(codelists),
        methods=methods.specs(),
        comments=dict(sorted(comments.items())),
        value_lists=tuple(value_lists),
    )


def _complete(values: pd.Series, kind: str) -> bool:
    """No value missing (Num: no NaN; Char: no empty text)."""
    if kind == "Num":
        return bool(pd.to_numeric(values, errors="coerce").notna().all())
    return bool(values.astype(str).ne("").all())


MakeItem = Callable[[Dataset, Variable, pd.Series, str, "int | None", str], ItemSpec]


def _domain(name: str) -> str:
    return name[4:] if name.startswith("SUPP") else name


def _value_list(spec: Dataset, v: Variable, df: pd.DataFrame, item: MakeItem) -> ValueListSpec | None:
    """Value-level metadata of ``v`` by the dataset's test code (one entry per code in the data)."""
    by, _ = VALUE_LEVEL[spec.name]
    codes = distinct_text(df[by])
    if not codes:
        return None
    entries = []
    for code in codes:
        rows = df.loc[df[by].astype(str) == code, v.name]
        where = WhereClause(f"WC.{spec.name}.{by}.{oid_part(code)}", f"IT.{spec.name}.{by}", (code,))
        origin_v = v
        method_key = ""
        if v.name == "QVAL":
            qorig = distinct_text(df.loc[df[by].astype(str) == code, "QORIG"])
            origin_v = Variable(v.name, v.label, v.type, qorig[0] if len(qorig) == 1 else v.origin)
            method_key = f"{spec.name}.QVAL.{code}" if f"{spec.name}.QVAL.{code}" in METHODS else ""
        entries.append(
            (where, item(spec, origin_v, rows, f"IT.{spec.name}.{v.name}.{oid_part(code)}", None, method_key))
        )
    return ValueListSpec(f"VL.{spec.name}.{v.name}", tuple(entries))

"""The SDTM datasets' metadata (SDTMIG 3.4): dataset label, and each variable's label, type and origin.

Names are at most 8 characters and labels at most 40 (XPT v5 limits, checked by a test). Types are ``Char``
or ``Num`` as in define.xml; origins are the define.xml ones: ``Collected`` (entered on a form),
``Derived`` (computed by the export from collected data), ``Assigned`` (set by the sponsor: codes,
categories, dictionary codes), ``Protocol`` (from the protocol file) and ``Not Available`` (an expected
variable the forms do not collect: present and empty).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    type: str  # "Char" or "Num"
    origin: str


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    variables: tuple[Variable, ...]

    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    def variable(self, name: str) -> Variable:
        return next(v for v in self.variables if v.name == name)


def _v(spec: str) -> tuple[Variable, ...]:
    """Parse ``NAME|label|C or N|origin`` lines."""
    out = []
    kinds = {"C": "Char", "N": "Num"}
    origins = {"c": "Collected", "d": "Derived", "a": "Assigned", "p": "Protocol", "n": "Not Available"}
    for line in filter(None, (x.strip() for x in spec.splitlines())):
        name, label, kind, origin = (x.strip() for x in line.split("|"))
        out.append(Variable(name, label, kinds[kind], origins[origin]))
    return tuple(out)


_ID = """
STUDYID|Study Identifier|C|a
DOMAIN|Domain Abbreviation|C|a
USUBJID|Unique Subject Identifier|C|d
"""
_SUPP = """
STUDYID|Study Identifier|C|a
RDOMAIN|Related Domain Abbreviation|C|a
USUBJID|Unique Subject Identifier|C|d
IDVAR|Identifying Variable|C|a
IDVARVAL|Identifying Variable Value|C|d
QNAM|Qualifier Variable Name|C|a
QLABEL|Qualifier Variable Label|C|a
QVAL|Data Value|C|c
QORIG|Origin|C|a
QEVAL|Evaluator|C|a
"""

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "DM",
            "Demographics",
            _v(
                _ID
                + """
SUBJID|Subject Identifier for the Study|C|c
RFSTDTC|Subject Reference Start Date/Time|C|d
RFENDTC|Subject Reference End Date/Time|C|d
RFXSTDTC|Date/Time of First Study Treatment|C|d
RFXENDTC|Date/Time of Last Study Treatment|C|d
RFICDTC|Date/Time of Informed Consent|C|c
RFPENDTC|Date/Time of End of Participation|C|d
DTHDTC|Date/Time of Death|C|d
DTHFL|Subject Death Flag|C|d
SITEID|Study Site Identifier|C|a
AGE|Age|N|c
AGEU|Age Units|C|a
SEX|Sex|C|c
RACE|Race|C|n
ARMCD|Planned Arm Code|C|a
ARM|Description of Planned Arm|C|a
ACTARMCD|Actual Arm Code|C|d
ACTARM|Description of Actual Arm|C|d
ARMNRS|Reason Arm and/or Actual Arm is Null|C|d
COUNTRY|Country|C|a
"""
            ),
        ),
        Dataset(
            "DS",
            "Disposition",
            _v(
                _ID
                + """
DSSEQ|Sequence Number|N|d
DSTERM|Reported Term for the Disposition Event|C|c
DSDECOD|Standardized Disposition Term|C|a
DSCAT|Category for Disposition Event|C|a
EPOCH|Epoch|C|d
DSSTDTC|Start Date/Time of Disposition Event|C|c
DSSTDY|Study Day of Start of Disposition Event|N|d
"""
            ),
        ),
        Dataset(
            "EX",
            "Exposure",
            _v(
                _ID
                + """
EXSEQ|Sequence Number|N|d
EXTRT|Name of Treatment|C|p
EXDOSE|Dose|N|p
EXDOSU|Dose Units|C|p
EXDOSFRM|Dose Form|C|a
EXROUTE|Route of Administration|C|c
EXADJ|Reason for Dose Adjustment|C|d
EPOCH|Epoch|C|d
EXSTDTC|Start Date/Time of Treatment|C|d
EXENDTC|End Date/Time of Treatment|C|d
EXSTDY|Study Day of Start of Treatment|N|d
EXENDY|Study Day of End of Treatment|N|d
EXTPT|Planned Time Point Name|C|c
"""
            ),
        ),
        Dataset(
            "EC",
            "Exposure as Collected",
            _v(
                _ID
                + """
ECSEQ|Sequence Number|N|d
ECTRT|Name of Treatment|C|p
ECPRESP|Pre-Specified|C|a
ECOCCUR|Occurrence|C|c
ECREASOC|Reason for Occur Value|C|c
ECDOSFRM|Dose Form|C|a
ECROUTE|Route of Administration|C|c
EPOCH|Epoch|C|d
ECSTDTC|Start Date/Time of Treatment|C|d
ECSTDY|Study Day of Start of Treatment|N|d
ECTPT|Planned Time Point Name|C|c
"""
            ),
        ),
        Dataset(
            "PR",
            "Procedures",
            _v(
                _ID
                + """
PRSEQ|Sequence Number|N|d
PRTRT|Reported Name of Procedure|C|a
PRCAT|Category|C|a
PRPRESP|Pre-Specified|C|a
PROCCUR|Occurrence|C|c
VISITNUM|Visit Number|N|d
VISIT|Visit Name|C|d
EPOCH|Epoch|C|d
PRSTDTC|Start Date/Time of Procedure|C|d
PRSTDY|Study Day of Start of Procedure|N|d
"""
            ),
        ),
        Dataset(
            "AE",
            "Adverse Events",
            _v(
                _ID
                + """
AESEQ|Sequence Number|N|d
AETERM|Reported Term for the Adverse Event|C|c
AEDECOD|Dictionary-Derived Term|C|a
AEPTCD|Preferred Term Code|N|a
AESOC|Primary System Organ Class|C|a
AESOCCD|Primary System Organ Class Code|N|a
AEBODSYS|Body System or Organ Class|C|a
AEBDSYCD|Body System or Organ Class Code|N|a
AESER|Serious Event|C|c
AEACN|Action Taken with Study Treatment|C|c
AEREL|Causality|C|c
AEOUT|Outcome of Adverse Event|C|c
AESCONG|Congenital Anomaly or Birth Defect|C|c
AESDISAB|Persist or Signif Disability/Incapacity|C|c
AESDTH|Results in Death|C|c
AESHOSP|Requires or Prolongs Hospitalization|C|c
AESLIFE|Is Life Threatening|C|c
AESMIE|Other Medically Important Serious Event|C|c
EPOCH|Epoch|C|d
AESTDTC|Start Date/Time of Adverse Event|C|d
AEENDTC|End Date/Time of Adverse Event|C|d
AESTDY|Study Day of Start of Adverse Event|N|d
AEENDY|Study Day of End of Adverse Event|N|d
"""
            ),
        ),
        Dataset(
            "LB",
            "Laboratory Test Results",
            _v(
                _ID
                + """
LBSEQ|Sequence Number|N|d
LBTESTCD|Lab Test or Examination Short Name|C|a
LBTEST|Lab Test or Examination Name|C|a
LBCAT|Category for Lab Test|C|a
LBORRES|Result or Finding in Original Units|C|c
LBORRESU|Original Units|C|p
LBSTRESC|Character Result/Finding in Std Format|C|d
LBSTRESN|Numeric Result/Finding in Standard Units|N|d
LBSTRESU|Standard Units|C|p
LBSPEC|Specimen Type|C|a
LBLOBXFL|Last Observation Before Exposure Flag|C|d
VISITNUM|Visit Number|N|d
VISIT|Visit Name|C|d
EPOCH|Epoch|C|d
LBDTC|Date/Time of Specimen Collection|C|c
LBDY|Study Day of Specimen Collection|N|d
"""
            ),
        ),
        Dataset(
            "RS",
            "Disease Response and Clin Classification",
            _v(
                _ID
                + """
RSSEQ|Sequence Number|N|d
RSTESTCD|Assessment Short Name|C|a
RSTEST|Assessment Name|C|a
RSCAT|Category for Assessment|C|a
RSORRES|Result or Finding in Original Units|C|d
RSSTRESC|Character Result/Finding in Std Format|C|d
RSSTRESN|Numeric Result/Finding in Standard Units|N|d
RSSTAT|Completion Status|C|d
RSREASND|Reason Not Done|C|d
RSLOBXFL|Last Observation Before Exposure Flag|C|d
VISITNUM|Visit Number|N|d
VISIT|Visit Name|C|d
EPOCH|Epoch|C|d
RSDTC|Date/Time of Assessment|C|d
RSDY|Study Day of Assessment|N|d
"""
            ),
        ),
        Dataset(
            "SE",
            "Subject Elements",
            _v(
                _ID
                + """
SESEQ|Sequence Number|N|d
ETCD|Element Code|C|a
ELEMENT|Description of Element|C|a
TAETORD|Planned Order of Element within Arm|N|a
EPOCH|Epoch|C|a
SESTDTC|Start Date/Time of Element|C|d
SEENDTC|End Date/Time of Element|C|d
SESTDY|Study Day of Start of Element|N|d
SEENDY|Study Day of End of Element|N|d
"""
            ),
        ),
        Dataset(
            "SV",
            "Subject Visits",
            _v(
                _ID
                + """
VISITNUM|Visit Number|N|d
VISIT|Visit Name|C|d
SVPRESP|Pre-Specified|C|a
SVOCCUR|Occurrence|C|d
SVSTDTC|Start Date/Time of Observation|C|d
SVENDTC|End Date/Time of Observation|C|d
SVSTDY|Study Day of Start of Observation|N|d
SVENDY|Study Day of End of Observation|N|d
"""
            ),
        ),
        Dataset(
            "TA",
            "Trial Arms",
            _v(
                """
STUDYID|Study Identifier|C|a
DOMAIN|Domain Abbreviation|C|a
ARMCD|Planned Arm Code|C|p
ARM|Description of Planned Arm|C|p
TAETORD|Planned Order of Element within Arm|N|p
ETCD|Element Code|C|p
ELEMENT|Description of Element|C|p
TABRANCH|Branch|C|p
TATRANS|Transition Rule|C|p
EPOCH|Epoch|C|p
"""
            ),
        ),
        Dataset(
            "TE",
            "Trial Elements",
            _v(
                """
STUDYID|Study Identifier|C|a
DOMAIN|Domain Abbreviation|C|a
ETCD|Element Code|C|p
ELEMENT|Description of Element|C|p
TESTRL|Rule for Start of Element|C|p
TEENRL|Rule for End of Element|C|p
TEDUR|Planned Duration of Element|C|p
"""
            ),
        ),
        Dataset(
            "TV",
            "Trial Visits",
            _v(
                """
STUDYID|Study Identifier|C|a
DOMAIN|Domain Abbreviation|C|a
VISITNUM|Visit Number|N|p
VISIT|Visit Name|C|p
VISITDY|Planned Study Day of Visit|N|p
ARMCD|Planned Arm Code|C|p
TVSTRL|Visit Start Rule|C|p
"""
            ),
        ),
        Dataset(
            "TI",
            "Trial Inclusion/Exclusion Criteria",
            _v(
                """
STUDYID|Study Identifier|C|a
DOMAIN|Domain Abbreviation|C|a
IETESTCD|Incl/Excl Criterion Short Name|C|p
IETEST|Inclusion/Exclusion Criterion|C|p
IECAT|Inclusion/Exclusion Category|C|p
TIVERS|Protocol Criteria Versions|C|p
"""
            ),
        ),
        Dataset(
            "TS",
            "Trial Summary",
            _v(
                """
STUDYID|Study Identifier|C|a
DOMAIN|Domain Abbreviation|C|a
TSSEQ|Sequence Number|N|a
TSPARMCD|Trial Summary Parameter Short Name|C|a
TSPARM|Trial Summary Parameter|C|a
TSVAL|Parameter Value|C|p
TSVALNF|Parameter Null Flavor|C|a
TSVALCD|Parameter Value Code|C|a
TSVCDREF|Name of the Reference Terminology|C|a
TSVCDVER|Version of the Reference Terminology|C|a
"""
            ),
        ),
        Dataset("SUPPDM", "Supplemental Qualifiers for DM", _v(_SUPP)),
        Dataset("SUPPEX", "Supplemental Qualifiers for EX", _v(_SUPP)),
        Dataset("SUPPAE", "Supplemental Qualifiers for AE", _v(_SUPP)),
    )
}

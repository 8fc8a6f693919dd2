"""The blinding rule, in one place: who is unblinded, and what is sealed from everyone else.

Blinding is a security property (a blinded role never sees an arm, a drug or anything revealing one), so
every service, page, report and export that hides or reveals an allocation asks this module:

- **Roles.** Only the study pharmacist (who prepares active or dummy) and the DSMB (aggregates by arm)
  are unblinded; every other role is blinded (:func:`is_blinded`). The one sanctioned exception is the
  investigator's recorded emergency unblinding of one patient (``conduct.unblinding``).
- **Columns.** A sealed column holds an allocation (``randomization_slots.arm`` and ``kit_number``). The
  declaration sits on the model (``info={store.models.SEALED_COLUMN: True}``) because the audit trail, which
  lives in storage below this layer, must seal them too; :data:`SEALED_COLUMNS` is what it collected.
- **Tables.** Audit entries of :data:`ALLOCATION_TABLES` reveal an allocation (which kit, which drug was
  given, which arm was disclosed) and are never shown to a blinded role (:func:`audit_entry_visible`).
- **ODM export.** A blinded CDISC ODM export (``conduct.odm``) carries no column that
  :func:`column_visible` hides (sealed columns, and every column of an allocation table except those of the
  blinded dosing log, :data:`BLINDED_VIEW_COLUMNS`) and no audit record of an allocation table.
- **Export variables.** In a blinded SDTM export the arm (DM ``ARMCD``, ``ARM``, ``ACTARMCD``, ``ACTARM``)
  and the dose (EX ``EXDOSE``, ``EXDOSU``) are absent and the treatment name (EX ``EXTRT``, EC ``ECTRT``) is
  masked (:func:`export_variables`, :func:`export_masks`); the trial design domains describe one blinded
  arm (``conduct.sdtm.design``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from immunosep.store import audit
from immunosep.store.models import ROLES

#: The roles allowed to know an arm; every other role of ``store.models.ROLES`` is blinded.
UNBLINDED_ROLES = frozenset({"pharmacist", "dsmb"})
#: The roles that must never learn an arm or a drug.
BLINDED_ROLES = frozenset(ROLES) - UNBLINDED_ROLES

#: ``(table, column)`` of every column declared sealed on the models (their values are allocations).
#: (Collected by ``store.audit``, which seals them in every entry it writes.)
SEALED_COLUMNS: frozenset[tuple[str, str]] = audit.SEALED_FIELDS
#: Tables whose rows (and so whose audit entries) reveal an allocation: the list of kits and arms, the
#: log of what was injected, the disclosures of an emergency unblinding, and the DSMB's interim looks (a
#: comparison of the arms: z, decision).
ALLOCATION_TABLES = frozenset({"randomization_slots", "dose_log", "unblindings", "interim_looks"})

#: Columns of an allocation table that a blinded reader may see: which scheduled injection was given or
#: missed, and why (``conduct.dosing.administrations``); never the drug, dose, volume or dummy flag.
BLINDED_VIEW_COLUMNS: Mapping[str, frozenset[str]] = {
    "dose_log": frozenset({"id", "patient_id", "study_day", "hour", "route", "given", "missed_reason"}),
}

#: Export variables present in an unblinded export only, by SDTM domain.
SEALED_EXPORT_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "DM": ("ARMCD", "ARM", "ACTARMCD", "ACTARM"),
    "EX": ("EXDOSE", "EXDOSU"),
}
#: The treatment name a blinded export shows instead of the drug.
MASKED_TREATMENT = "BLINDED STUDY TREATMENT"
#: Export variables kept in a blinded export but with every value replaced, by SDTM domain.
MASKED_EXPORT_VARIABLES: Mapping[str, Mapping[str, str]] = {
    "EX": {"EXTRT": MASKED_TREATMENT},
    "EC": {"ECTRT": MASKED_TREATMENT},
}


def is_blinded(role: str) -> bool:
    """True for every role that must never learn an arm or a drug (an unknown role too)."""
    return role not in UNBLINDED_ROLES


def is_sealed(table: str, column: str) -> bool:
    """True when ``table.column`` holds an allocation (see :data:`SEALED_COLUMNS`)."""
    return (table, column) in SEALED_COLUMNS


def audit_entry_visible(role: str, table: str) -> bool:
    """Whether an audit entry of ``table`` may be shown to ``role`` (allocation tables: unblinded only)."""
    return table not in ALLOCATION_TABLES or not is_blinded(role)


def export_variables(domain: str, variables: Iterable[str], *, blinded: bool) -> list[str]:
    """The variables of ``domain`` that an export carries: all, less the sealed ones when ``blinded``."""
    sealed = SEALED_EXPORT_VARIABLES.get(domain, ()) if blinded else ()
    return [v for v in variables if v not in sealed]


def export_masks(domain: str, *, blinded: bool) -> Mapping[str, str]:
    """Variable -> the value that replaces every value of it in a blinded export of ``domain``."""
    return MASKED_EXPORT_VARIABLES.get(domain, {}) if blinded else {}


def column_visible(table: str, column: str, *, blinded: bool) -> bool:
    """Whether an export (blinded or not) may carry the values of ``table.column``.

    Blinded: never a sealed column, and of an allocation table only :data:`BLINDED_VIEW_COLUMNS`.
    """
    if not blinded:
        return True
    if is_sealed(table, column):
        return False
    return table not in ALLOCATION_TABLES or column in BLINDED_VIEW_COLUMNS.get(table, frozenset())


def audit_table_exported(table: str, *, blinded: bool) -> bool:
    """Whether an export may carry the audit entries of ``table`` (blinded: not of an allocation table)."""
    return not blinded or table not in ALLOCATION_TABLES

"""Who may do what, in one table: action -> the roles allowed it, and which sites each role sees.

Services call :func:`require` first; pages and the navigation ask :func:`can` (so a menu entry or a button
appears exactly when the service behind it would allow it). The message of a refusal names the role and
the roles allowed, as it always has: ``the lab role may not randomize a patient; allowed: investigator``.

Roles (``store.models.ROLES``) and what they may, in short:

============  ==================  ===================================================================
role          sites               may
============  ==================  ===================================================================
investigator  own site            screen, consent, randomize, CRF, AEs, outcomes, answer queries,
                                  unblind one patient in an emergency, ODM export of the site
pharmacist    own site            the day's regimen, record doses, the dosing log (unblinded)
lab           all                 biomarker draws only
monitor       assigned sites      read clinical data, raise, close and re-open queries, audit trail,
                                  verify data against source (SDV), ODM export
data_manager  all                 read clinical data, queries (and the edit checks), audit trail, SDV
                                  progress, locks, exports (blinded)
dsmb          none (aggregates)   aggregated reports by arm, the interim looks (record and read)
admin         none                users and sites, no clinical data
============  ==================  ===================================================================

Who is blinded is :mod:`immunosep.conduct.blinding`'s rule; :data:`REVEALING` lists the actions that
show an allocation, and the table below grants them to unblinded roles only (checked on import).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from immunosep.conduct.blinding import UNBLINDED_ROLES
from immunosep.errors import AccessDenied
from immunosep.store.models import ROLES

if TYPE_CHECKING:
    from immunosep.conduct.access import Actor

Scope = Literal["home", "assigned", "all", "none"]

#: Which sites' patients a role sees: its one home site, the sites assigned to it, every site, or none.
SITE_SCOPE: Mapping[str, Scope] = {
    "investigator": "home",
    "pharmacist": "home",
    "lab": "all",
    "monitor": "assigned",
    "data_manager": "all",
    "dsmb": "none",
    "admin": "none",
}


@dataclass(frozen=True)
class Permission:
    """The roles allowed an action, and the action as a refusal names it ("randomize a patient")."""

    roles: frozenset[str]
    says: str


_CLINICAL_READERS = frozenset({"investigator", "monitor", "data_manager"})
_OVERSIGHT = frozenset({"monitor", "data_manager"})
_INVESTIGATOR = frozenset({"investigator"})
_PHARMACIST = frozenset({"pharmacist"})
_DATA_MANAGER = frozenset({"data_manager"})
_ADMIN = frozenset({"admin"})
_EXPORTERS = _DATA_MANAGER


#: Every action of the platform -> who may do it. Pages, API and services use these names only.
PERMISSIONS: Mapping[str, Permission] = {
    # screening, consent, classification, randomization (conduct.screening, classification, randomization)
    "screen": Permission(_INVESTIGATOR, "screen patients"),
    "record_consent": Permission(_INVESTIGATOR, "record consent"),
    "read_screening_log": Permission(_CLINICAL_READERS, "read the screening log"),
    "classify": Permission(_INVESTIGATOR, "classify a patient"),
    "randomize": Permission(_INVESTIGATOR, "randomize a patient"),
    "see_allocation": Permission(_PHARMACIST, "see a treatment allocation"),
    "read_list_usage": Permission(_CLINICAL_READERS, "see randomization list usage"),
    # the patient record and the daily CRF (web.pages.patients and .clinical_data, conduct.crf, worklist)
    "open_patient_record": Permission(_CLINICAL_READERS, "open patient records"),
    "read_worklist": Permission(_CLINICAL_READERS, "read the worklist"),
    "enter_crf": Permission(_INVESTIGATOR, "enter the daily CRF"),
    "read_crf": Permission(_CLINICAL_READERS, "read the daily CRF"),
    "enter_biomarkers": Permission(frozenset({"lab"}), "enter biomarker results"),
    # treatment (conduct.dosing): the unblinded pharmacist's regimen and log, the blinded view of it
    "see_regimen": Permission(_PHARMACIST, "see the treatment regimen"),
    "record_dose": Permission(_PHARMACIST, "record doses"),
    "list_on_treatment": Permission(_PHARMACIST, "see the patients on study treatment"),
    "read_dosing_log": Permission(_CLINICAL_READERS | _PHARMACIST, "read the dosing log"),
    "open_pharmacy_log": Permission(_PHARMACIST, "read the dosing log"),
    # safety and outcomes (conduct.adverse_events, outcomes, withdrawal)
    "record_ae": Permission(_INVESTIGATOR, "record adverse events"),
    "read_ae": Permission(_CLINICAL_READERS, "read adverse events"),
    "read_susars": Permission(_CLINICAL_READERS, "read the SUSAR report"),
    "record_outcome": Permission(_INVESTIGATOR, "record outcomes"),
    "read_outcomes": Permission(_CLINICAL_READERS, "read outcomes"),
    "record_withdrawal": Permission(_INVESTIGATOR, "record a withdrawal of consent"),
    # emergency unblinding (conduct.unblinding): a blinded investigator, recorded, one patient
    "unblind_emergency": Permission(_INVESTIGATOR, "unblind a patient"),
    "read_unblinding_report": Permission(_CLINICAL_READERS, "read the unblinding report"),
    "review_unblindings": Permission(_OVERSIGHT, "review the emergency unblindings"),
    # data quality (conduct.queries, lock, reports, export)
    "raise_query": Permission(_OVERSIGHT, "raise queries"),
    "answer_query": Permission(_INVESTIGATOR, "answer queries"),
    "close_query": Permission(_OVERSIGHT, "close queries"),
    "read_queries": Permission(_CLINICAL_READERS, "read queries"),
    "reopen_query": Permission(_OVERSIGHT, "re-open queries"),
    "run_edit_checks": Permission(_DATA_MANAGER, "run the edit checks"),
    # source data verification (conduct.sdv): the monitor verifies, oversight reads the plan and progress
    "verify_source": Permission(frozenset({"monitor"}), "verify data against source"),
    "read_sdv": Permission(_OVERSIGHT, "read the source data verification plan"),
    "review_missing_data": Permission(_OVERSIGHT, "review missing data"),
    "read_audit_trail": Permission(_OVERSIGHT, "read the audit trail"),
    "lock": Permission(_DATA_MANAGER, "lock data"),
    "lock_trial": Permission(_DATA_MANAGER, "lock the trial"),
    "export": Permission(_EXPORTERS, "export the trial data"),
    "export_odm": Permission(_CLINICAL_READERS, "export the clinical data of their sites (CDISC ODM)"),
    "export_unblinded": Permission(_EXPORTERS & UNBLINDED_ROLES, "export unblinded data"),
    "read_dsmb_report": Permission(frozenset({"dsmb"}), "read the DSMB report"),
    # group-sequential interim looks (conduct.interim_looks): run and recorded for the DSMB; the history is
    # read with the DSMB report's right
    "record_interim_look": Permission(frozenset({"dsmb"}), "record a group-sequential interim look"),
    # electronic signatures (conduct.signatures): each meaning of a signature is one action
    "sign_casebook": Permission(_INVESTIGATOR, "sign a casebook as investigator"),
    "review_casebook": Permission(_DATA_MANAGER, "sign a casebook as reviewer"),
    "sign_lock": Permission(_DATA_MANAGER, "sign the database lock"),
    "read_signatures": Permission(_CLINICAL_READERS, "read electronic signatures"),
    "print_casebook": Permission(_CLINICAL_READERS, "print the casebook of a patient"),
    # administration (conduct.users, sites)
    "manage_users": Permission(_ADMIN, "manage users"),
    "create_user": Permission(_ADMIN, "create users"),
    "deactivate_user": Permission(_ADMIN, "deactivate users"),
    "reset_password": Permission(_ADMIN, "reset passwords"),
    "approve_account": Permission(_ADMIN, "approve account changes (four eyes)"),
    "manage_sites": Permission(_ADMIN, "manage sites"),
    "edit_sites": Permission(_ADMIN, "edit sites"),
    "list_sites": Permission(
        frozenset({"admin", "data_manager", "monitor", "dsmb", "investigator"}), "list sites"
    ),
}

#: Actions that show an allocation (an arm, a drug, a dose, a kit's contents): unblinded roles only.
#: ``unblind_emergency`` is the one exception by design (a blinded investigator, one patient, recorded).
REVEALING = frozenset(
    {
        "see_allocation",
        "see_regimen",
        "record_dose",
        "list_on_treatment",
        "open_pharmacy_log",
        "read_dsmb_report",
        "record_interim_look",
        "export_unblinded",
    }
)


def _check_table() -> None:
    """The table names known roles only, and never grants a revealing action to a blinded role."""
    for action, permission in PERMISSIONS.items():
        unknown = permission.roles - set(ROLES)
        if unknown:
            raise AssertionError(f"permission {action!r} names unknown roles {sorted(unknown)}")
        if action in REVEALING and permission.roles - UNBLINDED_ROLES:
            raise AssertionError(f"permission {action!r} would show an allocation to a blinded role")
    if set(SITE_SCOPE) != set(ROLES):
        raise AssertionError("SITE_SCOPE must give every role of store.models.ROLES a scope")


_check_table()


def allowed_roles(action: str) -> frozenset[str]:
    """The roles allowed ``action``; an action that is not in :data:`PERMISSIONS` is a programming error."""
    try:
        return PERMISSIONS[action].roles
    except KeyError:
        raise KeyError(f"no action {action!r} in conduct.permissions.PERMISSIONS") from None


def role_can(role: str, action: str) -> bool:
    """True when a user of ``role`` may do ``action``."""
    return role in ROLES and role in allowed_roles(action)


def can(actor: Actor, action: str) -> bool:
    """True when ``actor`` may do ``action`` (the site and patient scope are checked by the service)."""
    return role_can(actor.role, action)


def require(actor: Actor, action: str) -> None:
    """Refuse ``action`` unless the actor's role is allowed it; the message names the allowed roles."""
    if not can(actor, action):
        permission = PERMISSIONS[action]
        allowed = ", ".join(sorted(permission.roles))
        raise AccessDenied(f"the {actor.role} role may not {permission.says}; allowed: {allowed}")


def site_scope(role: str) -> Scope:
    """Which sites' patients ``role`` sees (see :data:`SITE_SCOPE`); none for an unknown role."""
    return SITE_SCOPE.get(role, "none")

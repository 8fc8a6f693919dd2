"""The trial database as SQLAlchemy 2 typed models.

One table per kind of record. Patient-owned tables carry ``patient_id`` with ``ON DELETE CASCADE`` so a
withdrawal with removal of data erases the patient in one delete; the randomization slot keeps no link
to an erased patient (``patient_id`` set to NULL) but stays ``used``. Times are UTC; days are study days
(day 1 = day of the first dose). Units are in the column names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

ROLES = ("investigator", "pharmacist", "lab", "monitor", "data_manager", "dsmb", "admin")
#: Column ``info`` key of a sealed column (an arm, a kit number): its values would unblind whoever reads
#: them, so the audit trail records that they changed, never what they are. ``conduct.blinding`` reads the
#: same declaration, so that the rule has one home and storage need not import conduct.
SEALED_COLUMN = "sealed"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now in UTC (all stored times are UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no zone: we store and restore UTC).

    Stored as ``DateTime(timezone=True)`` (the migrations say so); naive datetimes are refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give times in UTC with a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_TS = UtcDateTime()
#: A table's ``patient_id`` is indexed (``index=True``) unless a unique constraint leads with it, whose index
#: serves the same lookups: a second one would only cost every insert (revision 0010).
_PATIENT_FK = "patients.id"


class Trial(Base):
    """One trial: the protocol it runs under (text and SHA-256) and the trial-level lock."""

    __tablename__ = "trials"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    protocol_text: Mapped[str] = mapped_column(Text, deferred=True)  # loaded when read (kilobytes)
    protocol_sha256: Mapped[str] = mapped_column(String(64))
    randomization_seed_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    locked_at: Mapped[datetime | None] = mapped_column(_TS)
    locked_by: Mapped[int | None] = mapped_column(Integer)


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str] = mapped_column(String(3), default="")  # ISO 3166-1 alpha-3; "" = not known
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    next_patient_number: Mapped[int] = mapped_column(Integer, default=1)


class User(Base):
    """A person with one role; ``site_id`` is the home site of investigators and pharmacists.

    ``username`` is stored normalised (``conduct.users.normalize_username``: NFKC, case-folded, trimmed), so
    the unique constraint also refuses look-alikes.
    """

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    #: the printed name of an electronic signature (21 CFR 11.50); empty: the account cannot sign
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    assigned_sites: Mapped[list[MonitorSite]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class UserSession(Base):
    """One login: live until logout, deactivation, a password change or its timeouts end it.

    ``token_sha256`` is the SHA-256 (hex) of the random token the signed cookie carries, so the table (and
    the audit trail, which copies its rows) never holds a usable token. ``ended_at`` set means the session is over:
    a replayed cookie finds it ended and gets 401.
    """

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(_TS)
    end_reason: Mapped[str] = mapped_column(String(40), default="")


class AccountApproval(Base):
    """A change that needs a second administrator (four eyes): an unblinded account, or its new password.

    ``action`` is ``create`` (the account stays inactive until approved) or ``reset_password`` (the new
    hash waits here until approved). ``requested_by`` and ``decided_by`` must differ; both are audited.
    """

    __tablename__ = "account_approvals"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(_TS)


class MonitorSite(Base):
    """Sites a monitor is assigned to."""

    __tablename__ = "monitor_sites"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)


class Patient(Base):
    """A screened patient, known only by a pseudonym such as ``S07-0012``."""

    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="screened")
    age_years: Mapped[int] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(8))
    weight_kg: Mapped[float | None] = mapped_column(Float)
    height_cm: Mapped[float | None] = mapped_column(Float)
    infection_type: Mapped[str] = mapped_column(String(40))
    sepsis_onset_at: Mapped[datetime] = mapped_column(_TS)
    stratum: Mapped[str | None] = mapped_column(String(32))
    first_dose_at: Mapped[datetime | None] = mapped_column(_TS)
    sidf_reversed: Mapped[bool | None] = mapped_column(Boolean)
    sidf_day: Mapped[int | None] = mapped_column(Integer)
    locked_at: Mapped[datetime | None] = mapped_column(_TS)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class PatientKey(Base):
    """Per-patient key for the audit trail's value digests; deleted on erasure (crypto-shredding)."""

    __tablename__ = "patient_keys"
    patient_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(32))


class ScreeningEntry(Base):
    """The screening log: one row per screened patient, eligible or not, with every exclusion reason."""

    __tablename__ = "screening_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"), unique=True)
    screened_at: Mapped[datetime] = mapped_column(_TS)
    eligible: Mapped[bool] = mapped_column(Boolean)
    exclusion_reasons: Mapped[str] = mapped_column(Text, default="")
    screened_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class EligibilityAnswer(Base):
    __tablename__ = "eligibility_answers"
    __table_args__ = (UniqueConstraint("patient_id", "question"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(String(60))
    answer: Mapped[str] = mapped_column(String(200))


class Consent(Base):
    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"), unique=True)
    given_by: Mapped[str] = mapped_column(String(20))
    consented_at: Mapped[datetime] = mapped_column(_TS)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class BiomarkerDraw(Base):
    """One EDTA sample measured at the central lab (ferritin ng/mL, mHLA-DR receptors per monocyte)."""

    __tablename__ = "biomarker_draws"
    __table_args__ = (UniqueConstraint("patient_id", "study_day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"))
    study_day: Mapped[int] = mapped_column(Integer)
    drawn_at: Mapped[datetime] = mapped_column(_TS)
    ferritin_ng_ml: Mapped[float | None] = mapped_column(Float)
    hla_dr_per_monocyte: Mapped[float | None] = mapped_column(Float)
    entered_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class RandomizationSlot(Base):
    """One sealed slot of a site's pre-generated list; ``arm`` is never returned to a blinded role.

    ``used`` stays true after an erasure although ``patient_id`` becomes NULL, so the slot is never reused.

    Under a response-adaptive design (``[randomization] design = "adaptive"``, revision 0009) a slot is
    made at ``db init`` with its kit number and its sealed ``uniform`` (from the trial's keyed stream) but
    no arm (``arm`` is ``""`` until the allocation; ``block_number`` and ``block_size`` are 0: no block); the allocation writes the ``stratum``,
    the sealed allocation ``probability`` to treatment, the sealed ``data_cut`` (canonical JSON of the
    outcomes known, per stratum and arm) and its sealed ``data_cut_sha256``, and the arm
    (``treatment`` when ``uniform < probability``). Block slots leave the five columns NULL.
    """

    __tablename__ = "randomization_slots"
    __table_args__ = (UniqueConstraint("site_id", "sequence"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(Integer)
    block_size: Mapped[int] = mapped_column(Integer)
    arm: Mapped[str] = mapped_column(String(32), info={SEALED_COLUMN: True})  # "": adaptive, not yet drawn
    kit_number: Mapped[str] = mapped_column(String(16), unique=True, info={SEALED_COLUMN: True})
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="SET NULL"), unique=True)
    allocated_at: Mapped[datetime | None] = mapped_column(_TS)
    allocated_by: Mapped[int | None] = mapped_column(Integer)
    stratum: Mapped[str | None] = mapped_column(String(32))
    uniform: Mapped[float | None] = mapped_column(Float, info={SEALED_COLUMN: True})
    probability: Mapped[float | None] = mapped_column(Float, info={SEALED_COLUMN: True})
    data_cut: Mapped[str | None] = mapped_column(Text, info={SEALED_COLUMN: True})
    data_cut_sha256: Mapped[str | None] = mapped_column(String(64), info={SEALED_COLUMN: True})


class DoseRecord(Base):
    """One scheduled injection, given or missed (written by the unblinded pharmacist)."""

    __tablename__ = "dose_log"
    __table_args__ = (UniqueConstraint("patient_id", "study_day", "route", "hour"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"))
    study_day: Mapped[int] = mapped_column(Integer)
    hour: Mapped[int] = mapped_column(Integer)
    route: Mapped[str] = mapped_column(String(8))
    drug: Mapped[str] = mapped_column(String(60))
    dose: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(12))
    volume_ml: Mapped[float] = mapped_column(Float)
    dummy: Mapped[bool] = mapped_column(Boolean)
    renal_adjusted: Mapped[bool] = mapped_column(Boolean)
    crcl_ml_min: Mapped[float | None] = mapped_column(Float)
    #: study day of the daily CRF whose creatinine gave ``crcl_ml_min`` (carried forward when earlier than
    #: ``study_day``); None when no clearance was known (the renal route could then only be logged missed)
    crcl_study_day: Mapped[int | None] = mapped_column(Integer)
    given: Mapped[bool] = mapped_column(Boolean)
    missed_reason: Mapped[str] = mapped_column(String(200), default="")
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class DailyCrf(Base):
    """One patient-day in the ICU: the worst SOFA inputs of the day, organ support, and the scored SOFA."""

    __tablename__ = "daily_crf"
    __table_args__ = (UniqueConstraint("patient_id", "study_day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"))
    study_day: Mapped[int] = mapped_column(Integer)
    weight_kg: Mapped[float | None] = mapped_column(Float)
    pao2_fio2_mmhg: Mapped[float | None] = mapped_column(Float)
    ventilated: Mapped[bool] = mapped_column(Boolean, default=False)
    platelets_1e3_ul: Mapped[float | None] = mapped_column(Float)
    bilirubin: Mapped[float | None] = mapped_column(Float)
    bilirubin_unit: Mapped[str] = mapped_column(String(10), default="mg/dL")
    map_mmhg: Mapped[float | None] = mapped_column(Float)
    dopamine_ug_kg_min: Mapped[float | None] = mapped_column(Float)
    dobutamine_ug_kg_min: Mapped[float | None] = mapped_column(Float)
    epinephrine_ug_kg_min: Mapped[float | None] = mapped_column(Float)
    norepinephrine_ug_kg_min: Mapped[float | None] = mapped_column(Float)
    gcs: Mapped[int | None] = mapped_column(Integer)
    creatinine: Mapped[float | None] = mapped_column(Float)
    creatinine_unit: Mapped[str] = mapped_column(String(10), default="mg/dL")
    urine_ml_day: Mapped[float | None] = mapped_column(Float)
    mechanical_ventilation: Mapped[bool] = mapped_column(Boolean, default=False)
    vasopressors: Mapped[bool] = mapped_column(Boolean, default=False)
    ckrt: Mapped[bool] = mapped_column(Boolean, default=False)
    sofa_respiration: Mapped[int] = mapped_column(Integer)
    sofa_coagulation: Mapped[int] = mapped_column(Integer)
    sofa_liver: Mapped[int] = mapped_column(Integer)
    sofa_cardiovascular: Mapped[int] = mapped_column(Integer)
    sofa_cns: Mapped[int] = mapped_column(Integer)
    sofa_renal: Mapped[int] = mapped_column(Integer)
    sofa_total: Mapped[int] = mapped_column(Integer)
    sofa_missing: Mapped[str] = mapped_column(String(100), default="")
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class CrfDaysEntered(Base):
    """The study days of a patient's daily CRF, as one list (``"1,2,5"``, in the order they were entered).

    Derived from ``daily_crf``, kept by the database itself: a trigger of revision 0011 adds the day of each
    row inserted there, in the same transaction, whatever inserts it. Not audited (the CRF rows are) and
    checked against ``daily_crf`` by ``audit.verify``. The dashboard reads it instead of every CRF row of
    the site at each view (on PostgreSQL about 0.6 of its 1.0 ms at 15 patients of 75 days).
    """

    __tablename__ = "crf_days_entered"
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"), primary_key=True)
    days: Mapped[str] = mapped_column(Text)


class Outcome(Base):
    """Vital status to the last follow-up day, ICU discharge, and the infection state on day 15."""

    __tablename__ = "outcomes"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"), unique=True)
    death_day: Mapped[int | None] = mapped_column(Integer)
    last_known_alive_day: Mapped[int | None] = mapped_column(Integer)
    icu_discharge_day: Mapped[int | None] = mapped_column(Integer)
    infection_day15: Mapped[str | None] = mapped_column(String(20))


class AdverseEvent(Base):
    """A treatment-emergent adverse event coded with MedDRA; ``susar`` = serious, related and unexpected.

    The seriousness criteria (``crit_*``, ``clinical.adverse_events.SERIOUSNESS_CRITERIA``), the action
    taken (CDISC ACN) and the outcome (CDISC OUT) are NULL on events recorded before revision 0005, which
    did not collect them; ``end_day`` is NULL while the event has not ended.
    """

    __tablename__ = "adverse_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"), index=True)
    onset_day: Mapped[int] = mapped_column(Integer)
    verbatim: Mapped[str] = mapped_column(String(200), default="")
    pt_code: Mapped[str] = mapped_column(String(12))
    pt_name: Mapped[str] = mapped_column(String(100))
    soc_code: Mapped[str] = mapped_column(String(12))
    soc_name: Mapped[str] = mapped_column(String(100))
    serious: Mapped[bool] = mapped_column(Boolean)
    relatedness: Mapped[str] = mapped_column(String(30))
    expected: Mapped[bool] = mapped_column(Boolean)
    susar: Mapped[bool] = mapped_column(Boolean)
    susar_reported_at: Mapped[datetime | None] = mapped_column(_TS)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    crit_death: Mapped[bool | None] = mapped_column(Boolean)
    crit_life_threatening: Mapped[bool | None] = mapped_column(Boolean)
    crit_hospitalization: Mapped[bool | None] = mapped_column(Boolean)
    crit_disability: Mapped[bool | None] = mapped_column(Boolean)
    crit_congenital_anomaly: Mapped[bool | None] = mapped_column(Boolean)
    crit_medically_important: Mapped[bool | None] = mapped_column(Boolean)
    action: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str | None] = mapped_column(String(40))
    end_day: Mapped[int | None] = mapped_column(Integer)


class Unblinding(Base):
    """An emergency unblinding of one patient, with its reason."""

    __tablename__ = "unblindings"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    unblinded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    unblinded_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class Withdrawal(Base):
    """What remains of a withdrawn patient: pseudonym, site, the used slot, when and by whom."""

    __tablename__ = "withdrawals"
    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("randomization_slots.id"))
    data_erased: Mapped[bool] = mapped_column(Boolean)
    withdrawn_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class Query(Base):
    """A data query on one field of one record, answered at the site, closed by a monitor/data manager.

    ``type`` is ``manual`` (raised by a monitor or data manager) or ``automatic`` (opened by the edit
    check ``check_id`` of ``conduct.edit_checks``; ``raised_by`` is the user whose save or sweep ran it).
    ``status``: open, answered, closed or reopened; a re-opening keeps its reason and who and when.
    ``study_day`` locates a query on a record that does not exist yet (a missed visit).
    """

    __tablename__ = "queries"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"), index=True)
    table_name: Mapped[str] = mapped_column(String(40))
    row_id: Mapped[int | None] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(60), default="")
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="open")
    raised_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    raised_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_by: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[datetime | None] = mapped_column(_TS)
    closed_by: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime | None] = mapped_column(_TS)
    type: Mapped[str] = mapped_column(String(10), default="manual")
    check_id: Mapped[str] = mapped_column(String(20), default="", index=True)
    study_day: Mapped[int | None] = mapped_column(Integer)
    close_reason: Mapped[str] = mapped_column(Text, default="")
    reopened_by: Mapped[int | None] = mapped_column(Integer)
    reopened_at: Mapped[datetime | None] = mapped_column(_TS)
    reopen_reason: Mapped[str] = mapped_column(Text, default="")


class SdvMark(Base):
    """A field (or, with ``field=""``, a whole record) verified against source by a monitor.

    ``value_digest`` is the SHA-256 of the verified values (``conduct.sdv``): the mark counts only while
    the record's current values give the same digest. A change through the services sets
    ``invalidated_at`` (an audited update), so the trail shows that a verified value returned to unverified.
    """

    __tablename__ = "sdv_marks"
    __table_args__ = (UniqueConstraint("table_name", "row_id", "field"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"), index=True)
    table_name: Mapped[str] = mapped_column(String(40))
    row_id: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(60), default="")
    value_digest: Mapped[str] = mapped_column(String(64))
    verified_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    verified_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    invalidated_at: Mapped[datetime | None] = mapped_column(_TS)
    invalidated_reason: Mapped[str] = mapped_column(Text, default="")


class Signature(Base):
    """An electronic signature (21 CFR Part 11 §11.50, §11.70): who, when, what it means, what it covers.

    ``kind`` is ``casebook`` (one patient's records, ``patient_id`` set) or ``lock`` (the trial's lock).
    ``digest`` is the SHA-256 of the canonical serialisation of the records signed
    (``conduct.casebook``), ``manifest`` the JSON of each record's own SHA-256, so that a later change
    can be named. The printed name, username and role are copied at signing time. A row is never
    changed or deleted by the application, except that it is marked invalidated (``invalidated_at`` and
    what changed) in the transaction of a change to a record it covers.
    """

    __tablename__ = "signatures"
    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    kind: Mapped[str] = mapped_column(String(20))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey(_PATIENT_FK, ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(100))
    printed_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    meaning: Mapped[str] = mapped_column(String(80))
    signed_at: Mapped[datetime] = mapped_column(_TS)
    #: "username+password" (the first signing of a login session, or without one) or "password"
    components: Mapped[str] = mapped_column(String(40))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("user_sessions.id", ondelete="SET NULL"))
    scheme: Mapped[str] = mapped_column(String(40))
    digest: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[str] = mapped_column(Text)
    invalidated_at: Mapped[datetime | None] = mapped_column(_TS)
    invalidated_reason: Mapped[str] = mapped_column(Text, default="")


class InterimLook(Base):
    """One group-sequential interim look (``conduct.interim_looks``): the DSMB's history of looks.

    ``look`` numbers the looks from 1; ``information_rate`` is the information fraction observed at the look
    (later looks spend alpha at these observed fractions); ``statistic`` is the test statistic (z, positive
    favours the experimental arm), ``efficacy_bound`` and ``futility_bound`` the z boundaries at the observed
    information, ``decision`` the statement of the prespecified rule, ``result`` the whole look as JSON.
    ``data_cut_sha256`` names the data analysed: one look per data cut. The row compares arms, so the table
    is an allocation table for the audit trail (``conduct.blinding.ALLOCATION_TABLES``): its entries are shown
    to unblinded roles only. ``run_by`` is who ran the analysis (a username, or the command line's login).
    """

    __tablename__ = "interim_looks"
    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    look: Mapped[int] = mapped_column(Integer, unique=True)
    endpoint: Mapped[str] = mapped_column(String(20))
    information_rate: Mapped[float] = mapped_column(Float)
    planned_information_rate: Mapped[float | None] = mapped_column(Float)
    statistic: Mapped[float] = mapped_column(Float)
    efficacy_bound: Mapped[float] = mapped_column(Float)
    futility_bound: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(200))
    data_cut_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    result: Mapped[str] = mapped_column(Text)
    run_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    run_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    run_by: Mapped[str] = mapped_column(String(120))


class AuditEntry(Base):
    """One change to one field (or one whole-row event), chained to the previous entry by SHA-256.

    ``entry_hash`` covers the previous hash, time, user, table, row, action, field and the *digests* of
    the old value, the new value and the reason (HMAC-SHA256 under the patient's key for patient data),
    so the values and the reason's free text can be dropped on erasure while the chain still verifies.
    ``erased_by`` is the id of the ``erase`` entry that authorised dropping them; that entry is in the
    chain and names the patient and how many entries it erased (``store.audit``, scheme 2).
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(Integer)
    table_name: Mapped[str] = mapped_column(String(40))
    row_id: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(10))
    field: Mapped[str] = mapped_column(String(60), default="")
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    old_digest: Mapped[str] = mapped_column(String(64), default="")
    new_digest: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_digest: Mapped[str] = mapped_column(String(64), default="")
    erased: Mapped[bool] = mapped_column(Boolean, default=False)
    erased_by: Mapped[int | None] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditSealKey(Base):
    """The key of the audit trail's digests of sealed values (one row, made at first need).

    A sealed value (an arm, a kit number) is recorded in the trail as ``<sealed:HMAC>`` over the table,
    column, row and value, so ``audit verify`` can tell that a sealed value was changed without the trail
    revealing it: without this key the two possible arms cannot be tried against the digest. Whoever can
    read this table can read the arms themselves (same database), so it adds no exposure.
    """

    __tablename__ = "audit_seal_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(32))


#: Tables whose rows belong to one patient (column ``patient_id``).
PATIENT_TABLES = (
    ScreeningEntry,
    EligibilityAnswer,
    Consent,
    BiomarkerDraw,
    DoseRecord,
    DailyCrf,
    Outcome,
    AdverseEvent,
    Unblinding,
    Query,
    SdvMark,
    Signature,
)

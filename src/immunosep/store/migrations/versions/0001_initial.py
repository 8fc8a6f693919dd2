"""initial schema: every table of the trial database.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 06:15:06.769847
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("table_name", sa.String(length=40), nullable=False),
        sa.Column("row_id", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("field", sa.String(length=60), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("old_digest", sa.String(length=64), nullable=False),
        sa.Column("new_digest", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("erased", sa.Boolean(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "patient_keys",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_patient_keys")),
    )
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("protocol_text", sa.Text(), nullable=False),
        sa.Column("protocol_sha256", sa.String(length=64), nullable=False),
        sa.Column("randomization_seed_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trials")),
        sa.UniqueConstraint("code", name=op.f("uq_trials_code")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("next_patient_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name=op.f("fk_sites_trial_id_trials")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("code", name=op.f("uq_sites_code")),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("age_years", sa.Integer(), nullable=False),
        sa.Column("sex", sa.String(length=8), nullable=False),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("height_cm", sa.Float(), nullable=True),
        sa.Column("infection_type", sa.String(length=40), nullable=False),
        sa.Column("sepsis_onset_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stratum", sa.String(length=32), nullable=True),
        sa.Column("first_dose_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sidf_reversed", sa.Boolean(), nullable=True),
        sa.Column("sidf_day", sa.Integer(), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_patients_site_id_sites")),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name=op.f("fk_patients_trial_id_trials")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_patients_pseudonym")),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patients_site_id"), ["site_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_users_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "adverse_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("onset_day", sa.Integer(), nullable=False),
        sa.Column("verbatim", sa.String(length=200), nullable=False),
        sa.Column("pt_code", sa.String(length=12), nullable=False),
        sa.Column("pt_name", sa.String(length=100), nullable=False),
        sa.Column("soc_code", sa.String(length=12), nullable=False),
        sa.Column("soc_name", sa.String(length=100), nullable=False),
        sa.Column("serious", sa.Boolean(), nullable=False),
        sa.Column("relatedness", sa.String(length=30), nullable=False),
        sa.Column("expected", sa.Boolean(), nullable=False),
        sa.Column("susar", sa.Boolean(), nullable=False),
        sa.Column("susar_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_adverse_events_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_adverse_events_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adverse_events")),
    )
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_adverse_events_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "biomarker_draws",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("study_day", sa.Integer(), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ferritin_ng_ml", sa.Float(), nullable=True),
        sa.Column("hla_dr_per_monocyte", sa.Float(), nullable=True),
        sa.Column("entered_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entered_by"], ["users.id"], name=op.f("fk_biomarker_draws_entered_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_biomarker_draws_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_biomarker_draws")),
        sa.UniqueConstraint("patient_id", "study_day", name=op.f("uq_biomarker_draws_patient_id")),
    )
    with op.batch_alter_table("biomarker_draws", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_biomarker_draws_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("given_by", sa.String(length=20), nullable=False),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_consents_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["recorded_by"], ["users.id"], name=op.f("fk_consents_recorded_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        sa.UniqueConstraint("patient_id", name=op.f("uq_consents_patient_id")),
    )
    op.create_table(
        "daily_crf",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("study_day", sa.Integer(), nullable=False),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("pao2_fio2_mmhg", sa.Float(), nullable=True),
        sa.Column("ventilated", sa.Boolean(), nullable=False),
        sa.Column("platelets_1e3_ul", sa.Float(), nullable=True),
        sa.Column("bilirubin", sa.Float(), nullable=True),
        sa.Column("bilirubin_unit", sa.String(length=10), nullable=False),
        sa.Column("map_mmhg", sa.Float(), nullable=True),
        sa.Column("dopamine_ug_kg_min", sa.Float(), nullable=True),
        sa.Column("dobutamine_ug_kg_min", sa.Float(), nullable=True),
        sa.Column("epinephrine_ug_kg_min", sa.Float(), nullable=True),
        sa.Column("norepinephrine_ug_kg_min", sa.Float(), nullable=True),
        sa.Column("gcs", sa.Integer(), nullable=True),
        sa.Column("creatinine", sa.Float(), nullable=True),
        sa.Column("creatinine_unit", sa.String(length=10), nullable=False),
        sa.Column("urine_ml_day", sa.Float(), nullable=True),
        sa.Column("mechanical_ventilation", sa.Boolean(), nullable=False),
        sa.Column("vasopressors", sa.Boolean(), nullable=False),
        sa.Column("ckrt", sa.Boolean(), nullable=False),
        sa.Column("sofa_respiration", sa.Integer(), nullable=False),
        sa.Column("sofa_coagulation", sa.Integer(), nullable=False),
        sa.Column("sofa_liver", sa.Integer(), nullable=False),
        sa.Column("sofa_cardiovascular", sa.Integer(), nullable=False),
        sa.Column("sofa_cns", sa.Integer(), nullable=False),
        sa.Column("sofa_renal", sa.Integer(), nullable=False),
        sa.Column("sofa_total", sa.Integer(), nullable=False),
        sa.Column("sofa_missing", sa.String(length=100), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_daily_crf_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["recorded_by"], ["users.id"], name=op.f("fk_daily_crf_recorded_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_crf")),
        sa.UniqueConstraint("patient_id", "study_day", name=op.f("uq_daily_crf_patient_id")),
    )
    with op.batch_alter_table("daily_crf", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_daily_crf_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "dose_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("study_day", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("route", sa.String(length=8), nullable=False),
        sa.Column("drug", sa.String(length=60), nullable=False),
        sa.Column("dose", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=12), nullable=False),
        sa.Column("volume_ml", sa.Float(), nullable=False),
        sa.Column("dummy", sa.Boolean(), nullable=False),
        sa.Column("renal_adjusted", sa.Boolean(), nullable=False),
        sa.Column("crcl_ml_min", sa.Float(), nullable=True),
        sa.Column("given", sa.Boolean(), nullable=False),
        sa.Column("missed_reason", sa.String(length=200), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_dose_log_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["recorded_by"], ["users.id"], name=op.f("fk_dose_log_recorded_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dose_log")),
        sa.UniqueConstraint("patient_id", "study_day", "route", "hour", name=op.f("uq_dose_log_patient_id")),
    )
    with op.batch_alter_table("dose_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dose_log_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "eligibility_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(length=60), nullable=False),
        sa.Column("answer", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_eligibility_answers_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eligibility_answers")),
        sa.UniqueConstraint("patient_id", "question", name=op.f("uq_eligibility_answers_patient_id")),
    )
    with op.batch_alter_table("eligibility_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eligibility_answers_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "monitor_sites",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_monitor_sites_site_id_sites")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_monitor_sites_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "site_id", name=op.f("pk_monitor_sites")),
    )
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("death_day", sa.Integer(), nullable=True),
        sa.Column("last_known_alive_day", sa.Integer(), nullable=True),
        sa.Column("icu_discharge_day", sa.Integer(), nullable=True),
        sa.Column("infection_day15", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_outcomes_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
        sa.UniqueConstraint("patient_id", name=op.f("uq_outcomes_patient_id")),
    )
    op.create_table(
        "queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=40), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=60), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("raised_by", sa.Integer(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("answered_by", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_queries_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["raised_by"], ["users.id"], name=op.f("fk_queries_raised_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queries")),
    )
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queries_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "randomization_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.Column("block_size", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(length=32), nullable=False),
        sa.Column("kit_number", sa.String(length=16), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("allocated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_randomization_slots_patient_id_patients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_randomization_slots_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_randomization_slots")),
        sa.UniqueConstraint("kit_number", name=op.f("uq_randomization_slots_kit_number")),
        sa.UniqueConstraint("patient_id", name=op.f("uq_randomization_slots_patient_id")),
        sa.UniqueConstraint("site_id", "sequence", name=op.f("uq_randomization_slots_site_id")),
    )
    op.create_table(
        "screening_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("screened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("exclusion_reasons", sa.Text(), nullable=False),
        sa.Column("screened_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_screening_log_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["screened_by"], ["users.id"], name=op.f("fk_screening_log_screened_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_log")),
        sa.UniqueConstraint("patient_id", name=op.f("uq_screening_log_patient_id")),
    )
    op.create_table(
        "unblindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("unblinded_by", sa.Integer(), nullable=False),
        sa.Column("unblinded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_unblindings_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unblinded_by"], ["users.id"], name=op.f("fk_unblindings_unblinded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unblindings")),
    )
    with op.batch_alter_table("unblindings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unblindings_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "withdrawals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=True),
        sa.Column("data_erased", sa.Boolean(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["recorded_by"], ["users.id"], name=op.f("fk_withdrawals_recorded_by_users")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_withdrawals_site_id_sites")),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["randomization_slots.id"], name=op.f("fk_withdrawals_slot_id_randomization_slots")
        ),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name=op.f("fk_withdrawals_trial_id_trials")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withdrawals")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_withdrawals_pseudonym")),
    )


def downgrade() -> None:
    op.drop_table("withdrawals")
    with op.batch_alter_table("unblindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unblindings_patient_id"))

    op.drop_table("unblindings")
    op.drop_table("screening_log")
    op.drop_table("randomization_slots")
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queries_patient_id"))

    op.drop_table("queries")
    op.drop_table("outcomes")
    op.drop_table("monitor_sites")
    with op.batch_alter_table("eligibility_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eligibility_answers_patient_id"))

    op.drop_table("eligibility_answers")
    with op.batch_alter_table("dose_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dose_log_patient_id"))

    op.drop_table("dose_log")
    with op.batch_alter_table("daily_crf", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daily_crf_patient_id"))

    op.drop_table("daily_crf")
    op.drop_table("consents")
    with op.batch_alter_table("biomarker_draws", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_biomarker_draws_patient_id"))

    op.drop_table("biomarker_draws")
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adverse_events_patient_id"))

    op.drop_table("adverse_events")
    op.drop_table("users")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patients_site_id"))

    op.drop_table("patients")
    op.drop_table("sites")
    op.drop_table("trials")
    op.drop_table("patient_keys")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_subject_id"))

    op.drop_table("audit_log")

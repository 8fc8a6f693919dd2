"""SQLAlchemy 2 models, sessions, Alembic migrations and the audit trail."""

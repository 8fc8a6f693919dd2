"""Alembic environment for the trial database (run through ``immunosep.store.db.upgrade_db``)."""

from __future__ import annotations

from alembic import context

from immunosep.store.db import make_engine
from immunosep.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run migrations on a live connection with the trial's engine settings (WAL, foreign keys)."""
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()

"""Command groups of the ``immunosep`` CLI; each module has ``register(app)``."""

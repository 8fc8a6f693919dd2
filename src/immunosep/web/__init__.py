"""The FastAPI web application."""

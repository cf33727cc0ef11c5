"""Postgres access: the embedded server, migrations, the pooled principal-scoped connections."""
from .database import Database, DatabaseUnavailable

__all__ = ["Database", "DatabaseUnavailable"]

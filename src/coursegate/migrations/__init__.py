"""Alembic migrations, shipped inside the package so `coursegate db upgrade` works from a wheel."""

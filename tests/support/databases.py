"""Throwaway PostgreSQL databases for the production-mode tests."""

import psycopg

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_postgres_database(name: str) -> str:
    """Drops and recreates `name`; returns its SQLAlchemy URL."""
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

"""Alembic environment: migrates the database that DATABASE_URL names (SQLite by default)."""

from logging.config import fileConfig

from sqlmodel import SQLModel

from alembic import context
from stream_chat import models, repo  # models also registers the tables

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name)

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=str(repo.engine().url),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_name=models.is_model_schema,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with repo.engine().connect() as connection:
        # Batch mode lets later migrations alter SQLite tables, which ALTER cannot do in place.
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            include_name=models.is_model_schema,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

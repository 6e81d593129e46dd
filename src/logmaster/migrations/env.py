"""Alembic environment: runs the migrations against the URL the caller configured."""

from alembic import context
from sqlalchemy import pool

from logmaster.db import Base, make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "set sqlalchemy.url"

engine = make_engine(url)
engine.pool = pool.NullPool(engine.pool._creator)  # migrations use one short connection
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()

"""Alembic environment: posguard runs migrations itself, on the registry's connection."""

from __future__ import annotations

from alembic import context

from posguard.registry.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - posguard always passes its connection
    raise RuntimeError("posguard registry migrations run through posguard.registry only")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

"""The position registry (SQLAlchemy 2): the bot's beliefs, drift events, specs, changes."""

from posguard.registry.heal import apply_heals
from posguard.registry.store import Registry, sqlite_url

__all__ = ["Registry", "apply_heals", "sqlite_url"]

"""The position registry (SQLAlchemy 2): the bot's beliefs, drift events, specs, changes."""

from posguard.registry.store import CycleTransaction, Registry, now_ms, sqlite_url

__all__ = ["CycleTransaction", "Registry", "now_ms", "sqlite_url"]

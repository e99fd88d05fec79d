"""What tasks share: settings (read again when their files change) and the clients and registry
they open.

Tasks receive plain data (the account's name); clients and database engines are opened
inside them and never passed between tasks.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from posguard.okx import OkxClient
from posguard.okx.cache import PublicCache
from posguard.registry import Registry
from posguard.settings import LiveSettings, Settings

# Public market data shared by the accounts a process checks (see posguard.okx.cache).
PUBLIC_CACHE = PublicCache()


# Read again when posguard.toml or its accounts file changes: a warm serving process lives for
# days, and an edited file takes effect at the next run, as with a process per run.
_SETTINGS = LiveSettings()


def settings() -> Settings:
    return _SETTINGS.get()


def reload_settings() -> Settings:
    """Read the settings again now (the environment may have changed: tests, the demo)."""
    _SETTINGS.forget()
    return settings()


@contextmanager
def okx(account: str) -> Iterator[OkxClient]:
    from tasks.ratelimit import HOST_LIMITER

    with OkxClient.for_account(
        settings(), account, limiter=HOST_LIMITER, cache=PUBLIC_CACHE
    ) as client:
        yield client


_shared: dict[str, Registry] = {}
_shared_lock = threading.Lock()


def shared_registry() -> Registry:
    """One open registry per process and URL, for rounds over many accounts: its engine's
    pool is thread-safe, and opening one per account costs a connection each. Closed when
    the process exits."""
    url = settings().resolved_registry_url
    with _shared_lock:
        if url not in _shared:
            if not _shared:
                atexit.register(_close_shared)
            _shared[url] = Registry(url)
        return _shared[url]


def _close_shared() -> None:
    with _shared_lock:
        for opened in _shared.values():
            opened.close()
        _shared.clear()


@contextmanager
def registry() -> Iterator[Registry]:
    with Registry(settings().resolved_registry_url) as opened:
        yield opened

"""What tasks share: settings (read again when their files change) and the clients and registry
they open.

Tasks receive plain data (the account's name); clients and database engines are opened
inside them and never passed between tasks.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar, cast

from posguard.okx import OkxClient
from posguard.okx.cache import PublicCache
from posguard.okx.host_limits import HOST_LIMITER
from posguard.registry import Registry
from posguard.settings import LiveSettings, Settings

# Public market data shared by the accounts a process checks (see posguard.okx.cache).
PUBLIC_CACHE = PublicCache()

P = ParamSpec("P")
R = TypeVar("R")


# Read again when posguard.toml or its accounts file changes: a warm serving process lives for
# days, and an edited file takes effect at the next run, as with a process per run.
_SETTINGS = LiveSettings()


# The settings a flow run started with: its stages read one version of them.
_RUN_SETTINGS: ContextVar[Settings | None] = ContextVar("posguard_run_settings", default=None)


def settings() -> Settings:
    pinned = _RUN_SETTINGS.get()
    return pinned if pinned is not None else _SETTINGS.get()


def one_settings_per_run(body: Callable[P, R]) -> Callable[P, R]:
    """A flow body whose stages (tasks in Prefect's threads included: they run in a copy of
    its context) see the settings as they were when it started. An edit made during the run
    takes effect at the next one, never half-way: a grace window waited out under one value
    and judged under another, or a registry read from one database and written to another."""
    if inspect.iscoroutinefunction(body):
        raise TypeError(f"{body.__name__}: an async flow body would run after the pin is gone")
    call = _pinned

    def run(*args: Any, **kwargs: Any) -> Any:
        return call(body, args, kwargs)

    # Prefect resolves a flow's parameter annotations in its function's globals and versions
    # the flow by its function's file: both must be the body's (the wrapper reads only its
    # closure, which pickles: Prefect's serve pickles flows).
    code = run.__code__.replace(
        co_filename=body.__code__.co_filename, co_firstlineno=body.__code__.co_firstlineno
    )
    rebuilt = types.FunctionType(code, body.__globals__, run.__name__, None, run.__closure__)
    wrapped = functools.wraps(body)(rebuilt)
    wrapped.__dict__[PINNED_MARK] = True
    return cast(Callable[P, R], wrapped)


PINNED_MARK = "__posguard_one_settings_per_run__"


def _pinned(body: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    token = _RUN_SETTINGS.set(settings())
    try:
        return body(*args, **kwargs)
    finally:
        _RUN_SETTINGS.reset(token)


def reload_settings() -> Settings:
    """Read the settings again now (the environment may have changed: tests, the demo)."""
    _SETTINGS.forget()
    return settings()


@contextmanager
def okx(account: str) -> Iterator[OkxClient]:
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

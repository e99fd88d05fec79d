"""`posguard watch`: OKX's private WebSocket as a fast path to reconciliation.

One process holds a stream per account (connection.py), keeps what each stream showed
(observed.py), and turns a burst of changes into one notice per account (debounce.py,
watcher.py). Publishing a notice (a Prefect event) is the caller's: this package has no
Prefect in it.
"""

from posguard.watch.connection import StreamAccount, StreamStatus, StreamTiming
from posguard.watch.debounce import Notice
from posguard.watch.observed import Change, ObservedBook
from posguard.watch.watcher import Watcher, WatchFigures

__all__ = [
    "Change",
    "Notice",
    "ObservedBook",
    "StreamAccount",
    "StreamStatus",
    "StreamTiming",
    "WatchFigures",
    "Watcher",
]

"""One callback registry for everything that notifies: lifecycle events and live data.

Both :meth:`iotlab.history.DeviceRepository.subscribe` (events saved) and
:meth:`iotlab.ingest.IngestionService.subscribe` (batches stored, alerts, connectivity)
keep their subscribers here, so they share one call form, ``subscribe(callback, *,
filters...)``, one cancel function, and one rule: a callback that raises is logged and
skipped, because what it is told about has already happened and one broken notebook cell
must not stop the others from hearing about it. There is no module-level state: each
repository and service owns its registry.

Examples
--------
>>> registry = Subscriptions()
>>> seen = []
>>> cancel = registry.add(seen.append, lambda item: item > 1)
>>> registry.deliver([1, 2, 3])
>>> seen
[2, 3]
>>> cancel(); cancel(); registry.deliver([4]); seen  # cancelling twice is harmless
[2, 3]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from iotlab.errors import ValidationError

__all__ = ["Subscriptions", "as_names"]

logger = logging.getLogger(__name__)


def as_names(value: str | Iterable[str] | None, *, field: str) -> frozenset[str] | None:
    """A filter value as a set of names; ``None`` (or ``"*"``) means everything.

    Examples
    --------
    >>> sorted(as_names(["d2", "d1"], field="devices"))
    ['d1', 'd2']
    >>> as_names("*", field="event_types") is None
    True
    """
    if value is None or value == "*":
        return None
    names = frozenset([value] if isinstance(value, str) else value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValidationError(f"must be names (strings), got {value!r}", field=field)
    return None if "*" in names else names


class Subscriptions:
    """Thread-safe callbacks, each with a predicate that picks what it is sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[Callable[[Any], None], Callable[[Any], bool]]] = []

    def add(
        self, callback: Callable[[Any], None], wants: Callable[[Any], bool] = lambda _: True
    ) -> Callable[[], None]:
        """Send ``callback`` every delivered item ``wants`` accepts; return a canceller."""
        if not callable(callback):
            raise ValidationError(f"must be callable, got {callback!r}", field="callback")
        entry = (callback, wants)
        with self._lock:
            self._entries.append(entry)

        def cancel() -> None:
            with self._lock:
                if entry in self._entries:
                    self._entries.remove(entry)

        return cancel

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def matching(self, item: Any) -> list[Callable[[Any], None]]:
        """The callbacks that want ``item``, in the order they subscribed."""
        with self._lock:
            entries = list(self._entries)
        return [callback for callback, wants in entries if wants(item)]

    def deliver(self, items: Iterable[Any]) -> None:
        """Send each item to every callback that wants it; failures are logged, not raised."""
        for item in items:
            for callback in self.matching(item):
                call_logged(callback, item)


def call_logged(callback: Callable[[Any], None], item: Any) -> None:
    """``callback(item)``, logging instead of raising what it raises."""
    try:
        callback(item)
    except Exception:
        logger.exception("subscriber %r failed on %r", callback, item)

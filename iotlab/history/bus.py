"""Subscribers to saved events, one registry per repository (no module-level state).

A callback that raises is logged and skipped: the events are already saved, and one
broken notebook cell must not stop the others from hearing about them.

Examples
--------
>>> bus = EventBus()
>>> seen = []
>>> cancel = bus.subscribe("*", seen.append)
>>> bus.publish(["a", "b"])  # anything with an ``event_type`` is dispatched by it
>>> seen
['a', 'b']
>>> cancel(); bus.publish(["c"]); seen
['a', 'b']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from iotlab.errors import ValidationError

__all__ = ["EventBus"]

logger = logging.getLogger(__name__)

ALL = "*"


class EventBus:
    """Callbacks keyed by event type name, or ``"*"`` for every event."""

    def __init__(self, known_types: Iterable[str] | None = None) -> None:
        self._known = None if known_types is None else frozenset(known_types)
        self._subscribers: dict[str, list[Callable[[Any], None]]] = {}

    def subscribe(self, event_type: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for each published event of ``event_type`` (or ``"*"``).

        Returns a function that cancels this subscription (calling it twice is harmless).
        """
        if not callable(callback):
            raise ValidationError(f"must be callable, got {callback!r}", field="callback")
        if event_type != ALL and self._known is not None and event_type not in self._known:
            raise ValidationError(
                f"unknown event type {event_type!r}; use '*' or one of {sorted(self._known)}",
                field="event_type",
            )
        entries = self._subscribers.setdefault(event_type, [])
        entries.append(callback)

        def unsubscribe() -> None:
            if callback in entries:
                entries.remove(callback)

        return unsubscribe

    def publish(self, events: Iterable[Any]) -> None:
        """Deliver ``events`` in order; a failing callback is logged, not raised."""
        for event in events:
            name = getattr(event, "event_type", None)
            for callback in [*self._subscribers.get(name, ()), *self._subscribers.get(ALL, ())]:
                try:
                    callback(event)
                except Exception:
                    logger.exception("subscriber %r failed on %s", callback, event)

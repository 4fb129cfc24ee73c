"""Subscribers to saved lifecycle events, one registry per repository.

A callback that raises is logged and skipped (see :mod:`iotlab._subscriptions`): the
events are already saved.

Examples
--------
>>> from types import SimpleNamespace as Event
>>> bus = EventBus()
>>> seen = []
>>> cancel = bus.subscribe(seen.append)
>>> firmware = []
>>> _ = bus.subscribe(firmware.append, event_types="FirmwareUpdated")
>>> bus.publish([Event(event_type="DeviceActivated"), Event(event_type="FirmwareUpdated")])
>>> len(seen), len(firmware)
(2, 1)
>>> cancel(); bus.publish([Event(event_type="DeviceActivated")]); len(seen)
2
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from iotlab._compat import deprecated
from iotlab._subscriptions import Subscriptions, as_names
from iotlab.errors import ValidationError

__all__ = ["EventBus"]


class EventBus:
    """Callbacks for saved events, filtered by event type name."""

    def __init__(self, known_types: Iterable[str] | None = None) -> None:
        self._known = None if known_types is None else frozenset(known_types)
        self._subscriptions = Subscriptions()

    def subscribe(
        self,
        callback: Callable[[Any], None] | str,
        legacy_callback: Callable[[Any], None] | None = None,
        /,
        *,
        event_types: str | Sequence[str] = "*",
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for each published event of ``event_types`` (``"*"``:
        all; one name or several). Returns a function that cancels this subscription.

        0.1's ``subscribe(event_type, callback)`` still works, with a ``DeprecationWarning``.
        """
        if isinstance(callback, str):
            deprecated(
                "subscribe(event_type, callback) is deprecated, use "
                "subscribe(callback, event_types=event_type)"
            )
            callback, event_types = legacy_callback, callback  # type: ignore[assignment]
        names = as_names(event_types, field="event_types")
        unknown = sorted(names - self._known) if names and self._known is not None else []
        if unknown:
            raise ValidationError(
                f"unknown event type(s) {unknown}; use '*' or some of {sorted(self._known or ())}",
                field="event_types",
            )
        return self._subscriptions.add(
            callback,  # type: ignore[arg-type]
            lambda event: names is None or getattr(event, "event_type", None) in names,
        )

    def publish(self, events: Iterable[Any]) -> None:
        """Deliver ``events`` in order; a failing callback is logged, not raised."""
        self._subscriptions.deliver(events)

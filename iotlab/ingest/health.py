"""The ingestion service's health: running totals, its state, and riding out store outages.

:class:`StoreGuard` runs the service's store work (:meth:`StoreGuard.call`): an action
that fails because the store did not answer (:class:`~iotlab.errors.StoreUnavailableError`:
a node down or restarting, a database locked) is retried after a backoff that doubles
from ``retry_initial`` up to ``retry_max`` seconds, each wait jittered by +-50% so that
many services do not retry in step. Meanwhile :attr:`StoreGuard.accepting` is cleared
(sources hold back; the broker keeps the messages) and the state is ``"store
unavailable"``. Each outage is logged when it begins and when it ends. Any other error
goes straight to the caller: it is fatal. So is an outage longer than ``outage_limit``.

Examples
--------
>>> from iotlab.errors import StoreUnavailableError
>>> stats = ServiceStats()
>>> guard = StoreGuard(stats, retry_initial=0.01, retry_max=0.02)
>>> answers = iter([StoreUnavailableError("node down"), StoreUnavailableError("node down")])
>>> def write():
...     failure = next(answers, None)
...     if failure is not None:
...         raise failure
...     return "stored"
>>> guard.call(write, "writing a batch")
'stored'
>>> stats.outages, stats.retries, guard.status().state
(1, 2, 'running')
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from iotlab.errors import StoreUnavailableError

__all__ = ["Abandoned", "ServiceStats", "ServiceStatus", "StoreGuard"]

logger = logging.getLogger("iotlab.ingest.service")


@dataclass
class ServiceStats:
    """Running totals since the service started."""

    batches: int = 0
    readings_written: int = 0
    heartbeats_written: int = 0
    dead_letters: int = 0
    anomalies: int = 0
    alerts: int = 0
    busy_seconds: float = 0.0  # time spent processing batches
    rollup_seconds: float = 0.0  # time spent refreshing roll-ups (on their own thread)
    outages: int = 0  # times the store stopped answering
    retries: int = 0  # store requests retried during outages


@dataclass(frozen=True)
class ServiceStatus:
    """What a service is doing, for a notebook or a health check.

    ``state`` is ``"created"``, ``"running"``, ``"store unavailable"`` (writes are being
    retried; sources are held), ``"stopping"``, ``"stopped"`` or ``"failed"`` (the
    service's ``error`` says why); ``since`` is when it entered that state (UTC);
    ``detail`` the store error or failure behind it, if any.

    ``consumer_lag`` (a Kafka source: records in this worker's partitions not yet
    stored) and ``queue_depth`` (an MQTT source: messages taken from the broker and not
    yet stored) say how far behind the service is; ``None`` without such a source. One
    that keeps growing means the workers do not keep up: add one. ``broker_connected``
    is ``False`` while a source has lost its broker (MQTT) or all its brokers (Kafka); it
    gets them back by itself, and the service is not ``healthy`` meanwhile. ``None``
    without a source.
    """

    state: str
    since: pd.Timestamp
    detail: str = ""
    healthy: bool = True
    readings_written: int = 0
    dead_letters: int = 0
    outages: int = 0
    retries: int = 0
    consumer_lag: int | None = None
    queue_depth: int | None = None
    broker_connected: bool | None = None


class Abandoned(Exception):
    """The service was stopped while work waited for the store: that work stays undone
    (and unacknowledged: its source delivers it again)."""


class StoreGuard:
    """Retry store work through outages and keep the service's state; see the module doc.

    Thread-safe: the service thread and its roll-up thread may both be waiting out one
    outage; input resumes when the last of them gets through.
    """

    def __init__(
        self,
        stats: ServiceStats,
        *,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        outage_limit: float | None = None,
    ) -> None:
        self.stats = stats
        self.retry_initial, self.retry_max = float(retry_initial), float(retry_max)
        self.outage_limit = outage_limit
        self.accepting = threading.Event()
        self.accepting.set()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._state = ("created", pd.Timestamp.now(tz="UTC"), "")
        self._waiting = 0  # threads currently waiting for the store

    def started(self) -> None:
        """The service (re)started."""
        self.stopping.clear()
        self.set_state("running")

    def set_state(self, state: str, detail: str = "") -> None:
        with self._lock:
            if self._state[0] != state or self._state[2] != detail:
                self._state = (state, pd.Timestamp.now(tz="UTC"), detail)
        if state == "failed":
            self.accepting.set()  # sources must not wait for a service that is gone

    def status(self) -> ServiceStatus:
        state, since, detail = self._state
        return ServiceStatus(
            state,
            since,
            detail,
            healthy=state in ("created", "running", "stopping", "stopped"),
            readings_written=self.stats.readings_written,
            dead_letters=self.stats.dead_letters,
            outages=self.stats.outages,
            retries=self.stats.retries,
        )

    def call(self, action: Callable[[], Any], what: str) -> Any:
        """``action()``, retried while the store is unavailable.

        Raises :class:`Abandoned` if the service is stopped meanwhile, and the store's
        error once an outage outlasts ``outage_limit``.
        """
        delay, began = self.retry_initial, None
        while True:
            try:
                result = action()
            except StoreUnavailableError as exc:
                now = time.monotonic()
                if began is None:
                    began = now
                    self._began(what, exc)
                if self.outage_limit is not None and now - began > self.outage_limit:
                    logger.error("store unavailable for over %.0f s: giving up", self.outage_limit)
                    raise
                self.stats.retries += 1
                if self.stopping.wait(delay * random.uniform(0.5, 1.5)):
                    self._ended(None)
                    raise Abandoned(what) from exc
                delay = min(2 * delay, self.retry_max)
                continue
            if began is not None:
                self._ended(time.monotonic() - began)
            return result

    def _began(self, what: str, exc: BaseException) -> None:
        with self._lock:
            self._waiting += 1
            first = self._waiting == 1
        if first:
            self.stats.outages += 1
            self.accepting.clear()
        self.set_state("store unavailable", str(exc))
        logger.warning("store unavailable while %s; retrying, input paused: %s", what, exc)

    def _ended(self, lasted: float | None) -> None:
        with self._lock:
            self._waiting -= 1
            last = self._waiting == 0
        if last:
            self.set_state("stopping" if self.stopping.is_set() else "running")
            self.accepting.set()
        if lasted is not None:
            logger.warning("store is back after %.1f s; input resumed", lasted)

"""Alert channels beside Python callbacks: a webhook (JSON POST with retry) and a log.

Both are alert handlers (``IngestionService.add_alert_handler(channel)``) and can be
switched on from ``iotlab serve`` (``--webhook URL``, repeatable; ``--alert-log``).

- :class:`WebhookChannel` never blocks the service: the handler only puts the alert on a
  bounded queue, and a thread of its own POSTs it as JSON, retrying on a connection error,
  a timeout or a 5xx/429 answer with exponential back-off. An alert that still fails, or
  that finds the queue full, is logged at ERROR with its content and counted (``failed``,
  ``dropped``): never lost without a word. :meth:`WebhookChannel.close` sends what is
  queued and stops the thread.
- :class:`LogChannel` writes one WARNING line per alert to the ``iotlab.alerts`` logger.

Examples
--------
>>> import pandas as pd
>>> from iotlab.ingest.notify import Alert
>>> alert = Alert("d1", "temp_01", pd.Timestamp("2026-01-05 10:00", tz="UTC"), 41.0, 21.0,
...               19.0, 23.0, 12.5, 0.999, "critical", "prophet")
>>> alert_payload(alert)["ts"], alert_payload(alert)["severity"]
('2026-01-05T10:00:00+00:00', 'critical')
>>> print(alert_line(alert))  # doctest: +NORMALIZE_WHITESPACE
critical anomaly on d1/temp_01 at 2026-01-05 10:00 UTC: 41 vs expected 21 [19, 23],
score 12.5 (prophet)
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from typing import Any

import pandas as pd

from iotlab.errors import ValidationError
from iotlab.ingest.notify import Alert

__all__ = ["LogChannel", "WebhookChannel", "alert_line", "alert_payload"]

logger = logging.getLogger("iotlab.alerts")
_STOP = object()


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert as a JSON-ready dict (ISO time, NaN as ``None``)."""
    payload: dict[str, Any] = {"kind": "anomaly_alert"}
    for key, value in asdict(alert).items():
        if isinstance(value, pd.Timestamp):
            value = value.isoformat()
        elif isinstance(value, float) and not math.isfinite(value):
            value = None
        payload[key] = value
    return payload


def alert_line(alert: Alert) -> str:
    """One readable line for a log."""
    return (
        f"{alert.severity} anomaly on {alert.device_id}/{alert.sensor_id} at "
        f"{alert.ts:%Y-%m-%d %H:%M} UTC: {alert.value:.4g} vs expected {alert.expected:.4g} "
        f"[{alert.lower:.4g}, {alert.upper:.4g}], score {alert.score:.4g} ({alert.detector})"
    )


class LogChannel:
    """Log each alert as one WARNING line (logger ``iotlab.alerts``)."""

    def __call__(self, alert: Alert) -> None:
        logger.warning("%s", alert_line(alert))


class WebhookChannel:
    """POST each alert as JSON to ``url``, from a thread of its own, with retries.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` endpoint.
    retries
        Attempts after the first one.
    backoff
        Seconds before the first retry; doubled each time.
    timeout
        Seconds to wait for an answer.
    queue_size
        Alerts waiting to be sent at most; beyond it an alert is logged and dropped.
    """

    def __init__(
        self,
        url: str,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 5.0,
        queue_size: int = 1000,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValidationError(f"must be an http(s) URL, got {url!r}", field="webhook")
        self.url = url
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.sent = self.failed = self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="iotlab-webhook", daemon=True)
        self._thread.start()

    def __call__(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            logger.error("webhook %s: queue full, alert not sent: %s", self.url, alert_line(alert))

    def close(self, timeout: float | None = 60.0) -> None:
        """Send what is queued (retries included, up to ``timeout`` s), then stop."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._deliver(item):
                self.sent += 1
            else:
                self.failed += 1
                logger.error(
                    "webhook %s: alert not delivered after %d attempts: %s",
                    self.url,
                    self.retries + 1,
                    alert_line(item),
                )

    def _deliver(self, alert: Alert) -> bool:
        body = json.dumps(alert_payload(alert)).encode("utf-8")
        delay = self.backoff
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "iotlab"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    if 200 <= answer.status < 300:
                        return True
            except urllib.error.HTTPError as exc:
                if exc.code < 500 and exc.code != 429:  # the receiver refuses: no retry
                    logger.error("webhook %s answered %d", self.url, exc.code)
                    return False
                logger.warning(
                    "webhook %s answered %d (attempt %d)", self.url, exc.code, attempt + 1
                )
            except (urllib.error.URLError, OSError) as exc:
                logger.warning("webhook %s: %s (attempt %d)", self.url, exc, attempt + 1)
        return False

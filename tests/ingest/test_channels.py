"""Alert channels: a webhook against a real HTTP server on 127.0.0.1, and the log."""

from __future__ import annotations

import argparse
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from iotlab._cli_serve import _alert_channels, add_serve_parser
from iotlab.errors import ValidationError
from iotlab.ingest.channels import LogChannel, WebhookChannel
from iotlab.ingest.notify import Alert


def _alert(n: int = 0) -> Alert:
    return Alert(
        "dev-a",
        "temp_01",
        pd.Timestamp("2026-01-05 10:00", tz="UTC") + pd.Timedelta(minutes=n),
        41.0,
        21.0,
        19.0,
        23.0,
        12.5 + n,
        float("nan"),
        "critical",
        "prophet",
    )


class _Receiver:
    """A local HTTP server that answers 503 to the first ``fail`` requests, then 204."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.requests, self.bodies = fail, 0, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if receiver.requests <= receiver.fail:
                    self.send_response(503)
                else:
                    receiver.bodies.append((self.headers["Content-Type"], json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_posts_json_and_retries_after_errors():
    with _Receiver(fail=2) as receiver:
        channel = WebhookChannel(receiver.url, backoff=0.01)
        channel(_alert(0))
        channel(_alert(1))
        channel.close()
    assert receiver.requests == 4  # two refused, then both alerts
    assert (channel.sent, channel.failed, channel.dropped) == (2, 0, 0)
    (kind, first), (_, second) = receiver.bodies
    assert kind == "application/json"
    assert first["device_id"] == "dev-a" and first["ts"] == "2026-01-05T10:00:00+00:00"
    assert first["confidence"] is None  # NaN is not JSON
    assert second["score"] == 13.5


def test_webhook_that_never_answers_logs_every_lost_alert(caplog):
    with _Receiver(fail=100) as receiver:
        channel = WebhookChannel(receiver.url, retries=2, backoff=0.01)
        with caplog.at_level(logging.WARNING, logger="iotlab.alerts"):
            channel(_alert())
            channel.close()
    assert receiver.requests == 3
    assert (channel.sent, channel.failed) == (0, 1)
    assert "not delivered after 3 attempts: critical anomaly on dev-a/temp_01" in caplog.text


def test_webhook_refuses_a_url_that_is_not_http():
    with pytest.raises(ValidationError, match="webhook"):
        WebhookChannel("ftp://example/alerts")


def test_log_channel(caplog):
    with caplog.at_level(logging.WARNING, logger="iotlab.alerts"):
        LogChannel()(_alert())
    assert (
        caplog.records[-1]
        .getMessage()
        .startswith("critical anomaly on dev-a/temp_01 at 2026-01-05 10:00 UTC: 41 vs expected 21")
    )


def test_serve_flags_attach_the_channels():
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["serve", "--mqtt", "mqtt://127.0.0.1:1", "--webhook", "http://127.0.0.1:9/a",
         "--webhook", "http://127.0.0.1:9/b", "--alert-log"]
    )  # fmt: skip

    class Service:
        handlers: list = []

        def add_alert_handler(self, handler):
            self.handlers.append(handler)

    service = Service()
    webhooks = _alert_channels(service, args)
    try:
        assert [w.url for w in webhooks] == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
        assert [type(h).__name__ for h in service.handlers] == [
            "WebhookChannel",
            "WebhookChannel",
            "LogChannel",
        ]
    finally:
        for webhook in webhooks:
            webhook.close()

"""Against a Mosquitto broker of the test's own: the MQTT source outlives a broker crash.

The broker is killed with kill -9 and started again on the same port. The receiver
process must notice, reconnect and subscribe again by itself (no restart of the
process, no message lost or stored twice), as a long-running ``iotlab serve`` would need
across a broker's restart.
"""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pytest

import iotlab
from iotlab.ingest.mqtt import MqttSource
from iotlab.ingest.publisher import Publisher

from .conftest import START, OwnBroker, per_key_counts
from .test_mqtt import _wait

pytestmark = pytest.mark.mqtt


def _stored(lab: iotlab.Platform, devices) -> pd.DataFrame:
    return pd.concat([lab.readings(d) for d in devices], ignore_index=True)


def test_the_source_reconnects_by_itself_after_the_broker_crashed(tmp_path, clean_fleet) -> None:
    broker = OwnBroker(tmp_path / "broker")
    broker.start()
    sim = clean_fleet.simulate(START, days=2 / 24, freq="1min")
    readings = sim.readings.sort_values(["ts", "device_id", "sensor_id"], ignore_index=True)
    before = readings[readings["ts"] < START + pd.Timedelta("1h")]
    after = readings[readings["ts"] >= START + pd.Timedelta("1h")]
    devices = clean_fleet.devices["device_id"]
    with iotlab.connect(f"sqlite:///{tmp_path / 'lab.db'}") as lab:
        lab.provision(clean_fleet)
        service = lab.ingestion_service(
            batch_size=200, max_delay=0.05, scoring=None, connectivity_every=None
        )
        service.start()
        source = MqttSource(service, broker.url, client_id=f"t-{uuid.uuid4().hex[:8]}")
        source.start()
        try:
            with Publisher(broker.url) as publisher:
                publisher.publish_readings(before, per="device")
            _wait(lambda: service.stats.readings_written == len(before), 60, "the first hour")
            receiver = source.pid
            assert service.status.broker_connected is True
            broker.crash()
            _wait(lambda: not source.connected, 30, "the receiver to notice")
            status = service.status
            assert status.broker_connected is False and not status.healthy
            broker.start()
            # The crashed broker forgot the subscription: what is published before the
            # receiver subscribes again goes to no one (MQTT), so wait for it.
            _wait(lambda: source.connected, 30, "the receiver to subscribe again")
            with Publisher(broker.url) as publisher:
                publisher.publish_readings(after, per="device")
            _wait(
                lambda: service.stats.readings_written >= len(readings),
                60,
                "the second hour, sent after the broker came back",
            )
            service.flush()
            time.sleep(0.5)  # anything sent twice would be written by now
            stored = _stored(lab, devices)
        finally:
            source.pause()
            service.stop()
            source.stop(end_session=True)
            broker.stop()
    assert service.error is None and source.error is None
    assert source.restarts == 0 and source.reconnects == 1  # reconnected, not restarted
    assert receiver is not None and service.status.broker_connected is not False
    assert len(stored) == len(readings)
    assert set(per_key_counts(stored, ["device_id", "sensor_id", "ts"])) == {1}
    assert service.stats.readings_written == len(readings)

"""Real-time ingestion: micro-batches from DataFrames, the simulator's live stream or an
MQTT broker into the store, scored against cached forecasts, with alerts and subscribers.

Examples
--------
>>> from iotlab.ingest import IngestionService, parse_message
>>> parse_message("iotlab/d1/heartbeat", b'{"ts": 0, "cpu": 3}').kind
'heartbeat'
>>> [p.kind for p in parse_payload("iotlab/d1", b'[{"sensor_id": "t", "ts": 0, "value": 1}]')]
['reading']
"""

from iotlab.ingest.deadletter import read_dead_letters, write_dead_letters
from iotlab.ingest.messages import Parsed, parse_message, parse_payload
from iotlab.ingest.notify import NOTIFICATION_KINDS, Alert, Notification
from iotlab.ingest.scoring import ForecastCache
from iotlab.ingest.service import IngestionService, ServiceStats, ServiceStatus
from iotlab.ingest.sources import feed_frames, feed_stream

__all__ = [
    "NOTIFICATION_KINDS",
    "Alert",
    "ForecastCache",
    "IngestionService",
    "Notification",
    "Parsed",
    "ServiceStats",
    "ServiceStatus",
    "feed_frames",
    "feed_stream",
    "parse_message",
    "parse_payload",
    "read_dead_letters",
    "write_dead_letters",
]

"""Append many devices' pending events to a store, several appends in flight at once.

On Cassandra each append is a lightweight transaction (a Paxos round trip of ~10-20 ms),
so appending device streams one after another leaves the client idle most of the time;
a few threads keep many rounds in flight on the (thread-safe) session. The SQLite store
serialises appends behind one lock (``capabilities.concurrent_writers`` is false), so
there the default is one append at a time.

Every device's outcome is recorded, so the caller can write projections for exactly the
streams that were appended, even if it is interrupted. A ``ConcurrencyError`` concerns
only its device: the others are still appended. Any other error (the store is down, a
request timed out) stops appends that have not started yet.

Examples
--------
>>> import iotlab
>>> from iotlab.history.aggregate import Device
>>> lab = iotlab.connect("sqlite://")
>>> devices = [Device.provision(f"d{i}", "thermostat", "HQ", at="2026-01-01") for i in range(3)]
>>> outcomes = {}
>>> append_all(lab.store, devices, outcomes, workers=2)
>>> sorted(outcomes.items())  # filled in the order the appends finish
[(0, None), (1, None), (2, None)]
>>> append_all(lab.store, devices[:1], outcomes := {}, workers=2)  # same version again
>>> outcomes  # doctest: +ELLIPSIS
{0: ConcurrencyError('device d0: version 1 was already written by another writer ...')}
>>> lab.close()
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, as_completed

from iotlab.errors import ConcurrencyError
from iotlab.history.aggregate import Device
from iotlab.history.events import events_to_frame
from iotlab.store.base import Store

__all__ = ["DEFAULT_WORKERS", "append_all", "default_workers", "failure"]

#: Appends in flight at once: enough to hide a Paxos round trip behind the others.
DEFAULT_WORKERS = 16


def default_workers(store: Store) -> int:
    """``DEFAULT_WORKERS``, or 1 where one lock serialises writes anyway (SQLite).

    Asks ``store.capabilities.concurrent_writers``. (Measured: threads make SQLite
    provisioning 10-30% slower, from thread switching.)
    """
    return DEFAULT_WORKERS if store.capabilities.concurrent_writers else 1


def _append(store: Store, device: Device) -> Exception | None:
    try:
        store.append_events(
            device.device_id, device.saved_version, events_to_frame(device.pending_events)
        )
    except Exception as exc:  # returned, so one device's failure does not hide the others'
        return exc
    return None


def _stops(outcome: Exception | None) -> bool:
    # A conflict is about one stream; anything else is likely to hit every append.
    return outcome is not None and not isinstance(outcome, ConcurrencyError)


def append_all(
    store: Store,
    devices: Sequence[Device],
    outcomes: MutableMapping[int, Exception | None],
    *,
    workers: int = DEFAULT_WORKERS,
) -> None:
    """Append each device's pending events; fill ``outcomes[i]`` with ``None`` or the error.

    ``outcomes`` is filled as appends finish (it is the caller's record of what reached
    the store even if this is interrupted). Devices whose append never started have no
    entry. ``workers=1`` appends in order on the calling thread.
    """
    if not devices:
        return
    # The first append runs here: it opens the connection and prepares the statement
    # once, instead of every worker racing to do it.
    outcomes[0] = _append(store, devices[0])
    rest = range(1, len(devices))
    if _stops(outcomes[0]) or not rest:
        return
    if workers <= 1:
        for i in rest:
            outcomes[i] = _append(store, devices[i])
            if _stops(outcomes[i]):
                return
        return
    pool = ThreadPoolExecutor(min(workers, len(rest)), thread_name_prefix="iotlab-append")
    futures: dict[Future, int] = {}
    try:
        futures = {pool.submit(_append, store, devices[i]): i for i in rest}
        for future in as_completed(futures):
            try:
                outcomes[futures[future]] = future.result()
            except CancelledError:
                continue
            if _stops(outcomes[futures[future]]):
                pool.shutdown(wait=False, cancel_futures=True)
    finally:
        # Interrupted or not: wait for the appends already running, and record them, so
        # the caller's projections match the streams.
        pool.shutdown(wait=True, cancel_futures=True)
        for future, i in futures.items():
            if i not in outcomes and future.done() and not future.cancelled():
                outcomes[i] = future.result()


def failure(devices: Sequence[Device], outcomes: dict[int, Exception | None]) -> Exception | None:
    """The error to raise for a batch of appends (the first failure, in input order).

    Its notes name every other device that failed and say how many were saved, so a
    conflict on one device of a fleet is reported as such.
    """
    failed = [(devices[i], outcomes[i]) for i in sorted(outcomes) if outcomes[i] is not None]
    if not failed:
        return None
    first = failed[0][1]
    assert first is not None  # ``failed`` holds the outcomes that are errors
    saved = sum(1 for outcome in outcomes.values() if outcome is None)
    skipped = len(devices) - len(outcomes)
    if len(failed) > 1:
        others = ", ".join(f"{d.device_id} ({type(e).__name__})" for d, e in failed[1:])
        first.add_note(f"also failed: {others}")
    if len(devices) > 1:
        first.add_note(
            f"{saved} of {len(devices)} devices were saved (projections included)"
            + (f"; {skipped} not attempted" if skipped else "")
            + "; reload the failed ones and retry"
        )
    return first

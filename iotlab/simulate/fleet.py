"""``Fleet``: a seeded set of devices that can be simulated over any time window.

Examples
--------
>>> fleet = Fleet(n_devices=4, seed=7)
>>> fleet.devices.columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
['device_id', 'device_type', 'location', 'manufacturer', 'model', 'firmware_version',
 'heartbeat_interval']
>>> sim = fleet.simulate("2026-01-05", days=1, freq="10min")
>>> sim.readings.groupby("device_id").size().min() > 0
np.True_
>>> Fleet(0, seed=1)
Traceback (most recent call last):
...
iotlab.errors.ValidationError: n_devices: must be an integer >= 1, got 0
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, cast

import numpy as np
import pandas as pd

from iotlab._time import TimeLike, utc_timestamp
from iotlab.errors import ValidationError
from iotlab.simulate import assemble, engine
from iotlab.simulate.catalogue import DEFAULT_DEVICE_TYPES, FACTORS, DeviceType
from iotlab.simulate.faults import FaultConfig
from iotlab.simulate.model import TypeGroup, build_fleet
from iotlab.simulate.plan import GUARD, DevicePlan, Window, local_window_hours, plan_device
from iotlab.simulate.signals import DAY_MS, weather, weather_knots
from iotlab.simulate.simulation import Simulation

__all__ = ["Fleet"]

_WEATHER = FACTORS.index("weather")


def _positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValidationError(f"must be an integer >= 1, got {value!r}", field=field)
    return int(value)


def _duration_ms(value: object, field: str) -> int:
    try:
        delta = pd.Timedelta(cast(Any, value))  # anything: pandas says what it cannot parse
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"cannot parse {value!r} as a duration", field=field) from exc
    if pd.isna(delta) or delta <= pd.Timedelta(0):
        raise ValidationError(f"must be a positive duration, got {value!r}", field=field)
    if delta % pd.Timedelta("1ms"):
        raise ValidationError(
            f"must be a whole number of milliseconds, got {value!r}", field=field
        )
    return int(delta // pd.Timedelta("1ms"))


def _resolve_types(device_types: Iterable[str | DeviceType] | None) -> tuple[DeviceType, ...]:
    if device_types is None:
        return tuple(DEFAULT_DEVICE_TYPES.values())
    if isinstance(device_types, str | DeviceType):
        device_types = [device_types]
    resolved = []
    for item in device_types:
        if isinstance(item, DeviceType):
            resolved.append(item)
        elif isinstance(item, str) and item in DEFAULT_DEVICE_TYPES:
            resolved.append(DEFAULT_DEVICE_TYPES[item])
        else:
            raise ValidationError(
                f"unknown device type {item!r}; known: {', '.join(DEFAULT_DEVICE_TYPES)} "
                "(or pass a DeviceType)",
                field="device_types",
            )
    if not resolved:
        raise ValidationError("needs at least one device type", field="device_types")
    names = [t.name for t in resolved]
    if len(set(names)) != len(names):
        raise ValidationError(f"duplicate device type names in {names}", field="device_types")
    return tuple(resolved)


class Fleet:
    """A seeded fleet of simulated devices.

    Parameters
    ----------
    n_devices
        Number of devices (>= 1).
    seed
        Non-negative integer; the same seed gives the same devices and data everywhere.
    device_types
        Names from :data:`~iotlab.simulate.DEFAULT_DEVICE_TYPES` and/or
        :class:`~iotlab.simulate.DeviceType` objects, assigned to devices in turn.
        Default: all built-in types.
    faults
        Which faults to inject (:class:`~iotlab.simulate.FaultConfig`); ``None`` means the
        default rates, ``FaultConfig.none()`` a clean fleet.

    Attributes
    ----------
    devices
        One row per device, sorted by ``device_id``.
    sensors
        One row per sensor: ``device_id, sensor_id, sensor_type, unit, min_value,
        max_value, calibration_date``.
    """

    def __init__(
        self,
        n_devices: int,
        seed: int,
        device_types: Iterable[str | DeviceType] | None = None,
        faults: FaultConfig | None = None,
    ) -> None:
        self.n_devices: int = _positive_int(n_devices, "n_devices")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValidationError(f"must be an integer >= 0, got {seed!r}", field="seed")
        self.seed: int = int(seed)
        self.device_types: tuple[DeviceType, ...] = _resolve_types(device_types)
        if faults is not None and not isinstance(faults, FaultConfig):
            raise ValidationError("must be a FaultConfig or None", field="faults")
        self.faults: FaultConfig = faults if faults is not None else FaultConfig()
        self.devices: pd.DataFrame
        self.sensors: pd.DataFrame
        self._groups: list[TypeGroup]
        self.devices, self.sensors, self._groups = build_fleet(
            self.n_devices, self.seed, self.device_types
        )
        self._device_ids: np.ndarray = self.devices["device_id"].to_numpy(dtype=object)

    def __repr__(self) -> str:
        counts = self.devices["device_type"].value_counts().sort_index()
        kinds = ", ".join(f"{n} {name}" for name, n in counts.items())
        return f"<Fleet seed={self.seed}: {self.n_devices} devices ({kinds})>"

    # -- windows and plans -------------------------------------------------------------------
    def _window(
        self, start: TimeLike, days: float | None, end: TimeLike | None, freq: object
    ) -> Window:
        step_ms = _duration_ms(freq, "freq")
        begin = utc_timestamp(start, field="start")
        if days is None and end is None:
            raise ValidationError("give days or end", field="days")
        if days is not None and end is not None:
            raise ValidationError("give days or end, not both", field="days")
        if days is not None:
            if (
                isinstance(days, bool)
                or not isinstance(days, numbers.Real)
                or not (math.isfinite(days) and days > 0)
            ):
                raise ValidationError(f"must be a number > 0, got {days!r}", field="days")
            finish = begin + pd.Timedelta(days=float(days))
        else:
            finish = utc_timestamp(cast(TimeLike, end), field="end")  # not None: checked above
            if finish <= begin:
                raise ValidationError(f"{finish} is not after start {begin}", field="end")
        to_ms = pd.Timedelta("1ms")
        epoch = pd.Timestamp(0, tz="UTC")
        return Window((begin - epoch) // to_ms, -(-(finish - epoch) // to_ms), step_ms)

    def _plans(self, window: Window) -> list[DevicePlan]:
        """The plan of every device (in ``devices`` order) for ``window``."""
        plans: list[DevicePlan | None] = [None] * self.n_devices
        hours = min(1.0, local_window_hours(window))
        for group in self._groups:
            kind = group.device_type
            for r in range(len(group.positions)):
                one = group.subset(np.array([r]))
                device_index = int(one.device_index[0])

                def scale(sensor: int, k: int, one: TypeGroup = one) -> float:
                    ks = np.arange(k - GUARD, k + GUARD + 1)
                    t = window.start_ms + ks * window.step_ms
                    smooth = one.signal(t, np.zeros((1, len(t))), window.start_ms)[0, sensor]
                    weather_weight = abs(one.loadings[0, sensor, _WEATHER])
                    return float(
                        one.noise_sd[sensor] + 1.3 * smooth.std() + 0.5 * weather_weight * hours
                    )

                def value_at(
                    sensor: int, k: int, one: TypeGroup = one, di: int = device_index
                ) -> float:
                    t = np.array([window.start_ms + k * window.step_ms])
                    day = int(t[0] // DAY_MS)
                    knots = np.concatenate(
                        [weather_knots(self.seed, di, day), weather_knots(self.seed, di, day + 1)]
                    )[None, :]
                    wx = weather(t, knots, day)
                    return float(one.signal(t, wx, window.start_ms)[0, sensor, 0])

                position = int(group.positions[r])
                plans[position] = plan_device(
                    seed=self.seed,
                    device_index=device_index,
                    window=window,
                    config=self.faults,
                    n_sensors=len(kind.sensor_ids),
                    battery_powered=kind.battery_powered,
                    firmware_versions=kind.firmware_versions,
                    firmware_version=str(self.devices.at[position, "firmware_version"]),
                    scale=scale,
                    value_at=value_at,
                    limits=(group.lower, group.upper),
                )
        return plans  # type: ignore[return-value]

    def _generate(
        self, window: Window, plans: list[DevicePlan], a_ms: int, b_ms: int,
        positions: np.ndarray,
    ) -> Simulation:  # fmt: skip
        """The simulation of devices at ``positions`` for ``[a_ms, b_ms)`` (whole days)."""
        k_lo, k_hi = window.steps_between(a_ms, b_ms)
        wanted = np.zeros(self.n_devices, dtype=bool)
        wanted[positions] = True
        groups, readings, metrics = [], [], []
        for group in self._groups:
            rows = np.flatnonzero(wanted[group.positions])
            if len(rows) == 0:
                continue
            part = group.subset(rows)
            part_plans = [plans[p] for p in part.positions]
            groups.append(part)
            if k_hi > k_lo:
                readings.append(
                    engine.generate_readings(self.seed, part, part_plans, window, k_lo, k_hi)
                )
            metrics.append(
                engine.generate_metrics(self.seed, part, part_plans, window, a_ms, b_ms)
            )
        t_ms = window.start_ms + np.arange(k_lo, k_hi, dtype=np.int64) * window.step_ms
        labels, events = [], []
        sensor_records = self.sensors[self.sensors["device_id"].isin(self._device_ids[positions])]
        by_device: dict[str, list[dict[Hashable, Any]]] = {}
        for record in sensor_records.to_dict("records"):
            by_device.setdefault(str(record["device_id"]), []).append(record)
        device_records = self.devices.iloc[np.sort(positions)]
        first_chunk = a_ms <= window.start_ms
        for position, device in zip(np.sort(positions), device_records.to_dict("records")):
            plan = plans[position]
            kind = next(t for t in self.device_types if t.name == device["device_type"])
            labels += assemble.plan_labels(
                device["device_id"], kind.sensor_ids, plan, window, a_ms, b_ms
            )
            events += [
                e
                for e in assemble.plan_events(device, by_device[device["device_id"]], plan, window)
                if e[0] < b_ms and (e[0] >= a_ms or first_chunk)
            ]
        return Simulation(
            readings=assemble.readings_frame(self._device_ids, groups, readings, t_ms),
            device_metrics=assemble.metrics_frame(self._device_ids, groups, metrics),
            labels=assemble.labels_frame(labels),
            events=assemble.events_frame(events),
            devices=device_records.reset_index(drop=True),
            sensors=sensor_records.reset_index(drop=True),
            start=pd.Timestamp(max(a_ms, window.start_ms), unit="ms", tz="UTC"),
            end=pd.Timestamp(min(b_ms, window.end_ms), unit="ms", tz="UTC"),
        )

    # -- public ------------------------------------------------------------------------------
    def simulate(
        self,
        start: TimeLike,
        days: float | None = None,
        end: TimeLike | None = None,
        freq: str | pd.Timedelta = "1min",
    ) -> Simulation:
        """Simulate readings, heartbeats, faults and lifecycle events over ``[start, end)``.

        Parameters
        ----------
        start
            First reading time (naive values are read as UTC).
        days, end
            Length of the window in days, or its (exclusive) end; give exactly one.
        freq
            Reading period, e.g. ``"1min"``; readings fall on ``start + k * freq``.
            Heartbeats follow each device type's own ``heartbeat_interval``.

        Returns
        -------
        Simulation

        Examples
        --------
        >>> sim = Fleet(3, seed=1).simulate("2026-01-05", days=2, freq="15min")
        >>> print(sim.readings["ts"].min(), sim.readings["ts"].max())
        2026-01-05 00:00:00+00:00 2026-01-06 23:45:00+00:00
        """
        window = self._window(start, days, end, freq)
        plans = self._plans(window)
        everyone = np.arange(self.n_devices)
        return self._generate(window, plans, window.start_ms, window.end_ms, everyone)

    def simulate_chunks(
        self,
        start: TimeLike,
        days: float | None = None,
        end: TimeLike | None = None,
        freq: str | pd.Timedelta = "1min",
        chunk: str | pd.Timedelta = "1D",
        devices_per_chunk: int | None = None,
    ) -> Iterator[Simulation]:
        """Simulate the same window as :meth:`simulate`, a piece at a time.

        Pieces are whole UTC days (``chunk``, a multiple of ``"1D"``), and within a day
        groups of ``devices_per_chunk`` devices, so memory stays bounded for any fleet.
        ``Simulation.concat(fleet.simulate_chunks(...))`` equals ``fleet.simulate(...)``
        exactly. A label or event goes to the piece its start time falls in (events
        before ``start``, such as provisioning, to the first piece).

        Examples
        --------
        >>> fleet = Fleet(3, seed=4)
        >>> parts = list(fleet.simulate_chunks("2026-01-05 12:00", days=2, freq="1h"))
        >>> [len(p.readings) > 0 for p in parts]
        [True, True, True]
        """
        window = self._window(start, days, end, freq)
        chunk_ms = _duration_ms(chunk, "chunk")
        if chunk_ms % DAY_MS:
            raise ValidationError(f"must be a whole number of days, got {chunk!r}", field="chunk")
        per_chunk = (
            self.n_devices
            if devices_per_chunk is None
            else _positive_int(devices_per_chunk, "devices_per_chunk")
        )
        plans = self._plans(window)
        a_ms = window.start_ms // DAY_MS * DAY_MS
        while a_ms < window.end_ms:
            b_ms = a_ms + chunk_ms
            lo, hi = max(a_ms, window.start_ms), min(b_ms, window.end_ms)
            for first in range(0, self.n_devices, per_chunk):
                positions = np.arange(first, min(first + per_chunk, self.n_devices))
                yield self._generate(window, plans, lo, hi, positions)
            a_ms = b_ms

    def stream(
        self,
        start: TimeLike,
        freq: str | pd.Timedelta = "1min",
        days: float | None = None,
        end: TimeLike | None = None,
        speed: float | None = 60.0,
        batch: str | pd.Timedelta | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> Iterator[pd.DataFrame]:
        """Yield readings in time batches, paced like a live feed.

        Each batch holds the readings with ``ts`` in one ``batch``-long slice of the
        window (default: one ``freq``), sorted like :attr:`Simulation.readings`, and is
        yielded once ``(slice end - start) / speed`` seconds have passed since the first
        call (``speed=60``: an hour of data per minute). ``speed=None`` or ``inf``:
        no waiting. Concatenated and sorted by ``device_id, sensor_id, ts``, the
        batches equal ``simulate(start, days, end, freq).readings``. Slices without any
        reading are skipped.

        Examples
        --------
        >>> fleet = Fleet(2, seed=3)
        >>> batches = list(fleet.stream("2026-01-05", freq="1h", days=1, speed=None))
        >>> len(batches), batches[0]["ts"].nunique()
        (24, 1)
        """
        window = self._window(start, days, end, freq)
        batch_ms = window.step_ms if batch is None else _duration_ms(batch, "batch")
        if speed is not None and not (isinstance(speed, numbers.Real) and speed > 0):
            raise ValidationError(f"must be > 0 or None, got {speed!r}", field="speed")
        paced = speed is not None and math.isfinite(speed)
        began = clock()
        for part in self.simulate_chunks(start, days=days, end=end, freq=freq):
            readings = part.readings
            ts = readings["ts"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
            slot = (ts - window.start_ms) // batch_ms
            order = np.argsort(slot, kind="stable")
            slot = slot[order]
            cuts = np.flatnonzero(np.diff(slot)) + 1
            for rows in np.split(order, cuts) if len(order) else []:
                number = int((ts[rows[0]] - window.start_ms) // batch_ms)
                if paced:
                    due_ms = min((number + 1) * batch_ms, window.end_ms - window.start_ms)
                    wait = began + due_ms / 1000 / speed - clock()  # type: ignore[operator]
                    if wait > 0:
                        sleep(wait)
                yield readings.iloc[rows].reset_index(drop=True)

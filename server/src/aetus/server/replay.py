"""Replay of a recording as a device: events in time order, at the recorded pace.

A recording's tracks are merged into one schedule. A signal frame is due when
its last sample was taken, and metric points are grouped into windows of
``metric_window_ns`` that are due at the window's end. The sender waits until
each item is due (scaled by ``rate``), or sends at once with ``rate=None``.

Event times are the recording's own offsets placed on the clock at
``start_time_ns``: the timestamps keep the recorded spacing whatever the
pace. By default a replay at the true rate starts now, and a faster one ends
now, so that no event lies in the future when it is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from aetus.sdk import Channel as SdkChannel
from aetus.sdk import DeviceIdentity, build_metrics, build_signal_frames
from aetus.server.recordings import MetricTrack, Recording, SignalFrameData, SignalTrack
from aetus.telemetry.v1 import telemetry_pb2

__all__ = [
    "EventSender",
    "ReplayReport",
    "ScheduledItem",
    "default_start_time_ns",
    "replay_recording",
    "schedule_recording",
]

logger = logging.getLogger(__name__)

# Width of the windows that group metric points into one event.
DEFAULT_METRIC_WINDOW_NS = 1_000_000_000

# Largest number of metric points packed into one MetricColumns event.
MAX_POINTS_PER_EVENT = 10_000


class EventSender(Protocol):
    """Receiver of replayed events, such as the SDK's EventStream."""

    async def send(self, event: telemetry_pb2.Event) -> None:
        """Queue one event for sending; waits while the sender is full."""
        ...


@dataclass(frozen=True)
class ScheduledItem:
    """One signal frame, or the metric points of one window, and when it is due."""

    due_offset_ns: int
    track: SignalTrack | None = None
    frame: SignalFrameData | None = None
    # For a metric window: each track with the slice of its points in it.
    points: tuple[tuple[MetricTrack, slice], ...] = ()


@dataclass
class ReplayReport:
    """Counts of the events, frames and points a replay sent."""

    start_time_ns: int
    events: int = 0
    frames: int = 0
    samples: int = 0
    metric_points: int = 0
    streams: set[str] = field(default_factory=set)


def default_start_time_ns(
    recording: Recording, rate: float | None, now_ns: int | None = None
) -> int:
    """Return where the recording's first sample lands on the clock.

    At the true rate (1.0) the recording starts now. Faster or slower
    replays end now, so every event time is in the past when it is sent.
    """
    now = time.time_ns() if now_ns is None else now_ns
    if rate is not None and rate <= 1.0:
        return now
    return now - recording.duration_ns


def schedule_recording(
    recording: Recording, metric_window_ns: int = DEFAULT_METRIC_WINDOW_NS
) -> list[ScheduledItem]:
    """Merge a recording's frames and metric windows into one list by due time."""
    items = [
        ScheduledItem(
            frame.offset_ns + (len(frame.samples) - 1) * track.sample_interval_ns,
            track=track,
            frame=frame,
        )
        for track in recording.signals
        for frame in track.frames
    ]
    items.extend(_metric_windows(recording.metrics, metric_window_ns))
    items.sort(key=lambda item: item.due_offset_ns)
    return items


def _metric_windows(
    tracks: list[MetricTrack], window_ns: int
) -> Iterator[ScheduledItem]:
    windows: dict[int, list[tuple[MetricTrack, slice]]] = {}
    for track in tracks:
        if not len(track.offsets_ns):
            continue
        index = track.offsets_ns // window_ns
        bounds = np.flatnonzero(np.diff(index)) + 1
        starts = np.concatenate([[0], bounds])
        stops = np.concatenate([bounds, [len(index)]])
        for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
            windows.setdefault(int(index[start]), []).append(
                (track, slice(start, stop))
            )
    for window, points in sorted(windows.items()):
        last = max(int(track.offsets_ns[part.stop - 1]) for track, part in points)
        yield ScheduledItem(
            min(last, (window + 1) * window_ns - 1), points=tuple(points)
        )


def build_item_events(
    item: ScheduledItem, identity: DeviceIdentity, start_time_ns: int
) -> list[telemetry_pb2.Event]:
    """Build the events of one scheduled item, numbered by ``identity``."""
    if item.track is not None and item.frame is not None:
        return _frame_events(item.track, item.frame, identity, start_time_ns)
    return _metric_events(item.points, identity, start_time_ns)


def _frame_events(
    track: SignalTrack,
    frame: SignalFrameData,
    identity: DeviceIdentity,
    start_time_ns: int,
) -> list[telemetry_pb2.Event]:
    channels = [
        SdkChannel(channel.name, channel.unit, scale=track.scale)
        for channel in track.channels
    ]
    return build_signal_frames(
        identity,
        track.stream,
        frame.samples,
        channels=channels,
        sample_interval_ns=track.sample_interval_ns,
        time=start_time_ns + frame.offset_ns,
    )


def _metric_events(
    points: tuple[tuple[MetricTrack, slice], ...],
    identity: DeviceIdentity,
    start_time_ns: int,
) -> list[telemetry_pb2.Event]:
    events = []
    numeric = [
        (track, part) for track, part in points if not isinstance(track.values, list)
    ]
    for track, part in points:
        if not isinstance(track.values, list):
            continue
        for offset, value in zip(
            track.offsets_ns[part].tolist(), track.values[part], strict=True
        ):
            events.append(
                build_metrics(
                    identity, {track.name: value}, time=start_time_ns + int(offset)
                )
            )
    if numeric:
        events.extend(_column_events(numeric, identity, start_time_ns))
    return events


def _column_events(
    points: list[tuple[MetricTrack, slice]],
    identity: DeviceIdentity,
    start_time_ns: int,
) -> list[telemetry_pb2.Event]:
    """Pack numeric points of several tracks, each with its own times, in columns."""
    names = [track.name for track, _ in points]
    units = [track.unit for track, _ in points]
    indices = np.concatenate(
        [
            np.full(part.stop - part.start, i, dtype=np.uint32)
            for i, (_, part) in enumerate(points)
        ]
    )
    offsets = np.concatenate([track.offsets_ns[part] for track, part in points])
    values = np.concatenate([np.asarray(track.values)[part] for track, part in points])
    chunks = range(0, len(values), MAX_POINTS_PER_EVENT)
    boot_id, first = identity.take_sequences(len(chunks))
    events = []
    for number, begin in enumerate(chunks):
        end = begin + MAX_POINTS_PER_EVENT
        base = int(offsets[begin:end].min())
        event = telemetry_pb2.Event(
            device_id=identity.device_id,
            boot_id=boot_id,
            sequence=first + number,
            time_source=telemetry_pb2.TIME_SOURCE_SYNCED,
            firmware_version=identity.firmware_version,
        )
        event.time.FromNanoseconds(start_time_ns + base)
        body = event.metric_columns
        body.names.extend(names)
        body.units.extend(units)
        body.name_indices.extend(indices[begin:end].tolist())
        body.time_offsets_ns.extend((offsets[begin:end] - base).tolist())
        body.values.extend(values[begin:end].tolist())
        events.append(event)
    return events


async def replay_recording(
    recording: Recording,
    sender: EventSender,
    identity: DeviceIdentity,
    *,
    rate: float | None = 1.0,
    start_time_ns: int | None = None,
    metric_window_ns: int = DEFAULT_METRIC_WINDOW_NS,
) -> ReplayReport:
    """Send a recording's events in due order, paced by ``rate``.

    Args:
        recording: What the readers made of the file.
        sender: Receives each event, for example an SDK EventStream.
        identity: Device identity that numbers the events.
        rate: Speed-up over the recorded pace; None sends as fast as the
            sender accepts.
        start_time_ns: Clock time of the first sample, in ns since the epoch.
            Default: ``default_start_time_ns``.
        metric_window_ns: Width of the windows that group metric points.

    Returns:
        Counts of what was sent.

    Raises:
        ValueError: ``rate`` is not positive.
    """
    if rate is not None and not rate > 0:
        raise ValueError(f"rate {rate!r} is invalid; give a speed-up above 0")
    start = (
        default_start_time_ns(recording, rate)
        if start_time_ns is None
        else start_time_ns
    )
    report = ReplayReport(start)
    loop = asyncio.get_running_loop()
    paced_from = loop.time()
    for item in schedule_recording(recording, metric_window_ns):
        if rate is not None:
            delay = paced_from + item.due_offset_ns / 1e9 / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        for event in build_item_events(item, identity, start):
            await sender.send(event)
            report.events += 1
        _count(report, item)
    logger.info(
        "Replayed %s: %s events, %s frames, %s metric points",
        recording.path.name,
        report.events,
        report.frames,
        report.metric_points,
    )
    return report


def _count(report: ReplayReport, item: ScheduledItem) -> None:
    if item.track is not None and item.frame is not None:
        report.frames += 1
        report.samples += len(item.frame.samples)
        report.streams.add(item.track.stream)
    for track, part in item.points:
        report.metric_points += part.stop - part.start
        report.streams.add(track.name)

"""Reader for NPZ recordings: one numeric array of captures plus label arrays."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from aetus.server.recordings._framing import (
    choose_encoding,
    default_frame_samples,
    encode_values,
    frames_from_regular,
    integer_encoding,
    interval_ns,
    rate_from_name,
    slug,
)
from aetus.server.recordings._model import (
    Channel,
    MetricTrack,
    ReadOptions,
    Recording,
    RecordingError,
    SampleArray,
    SignalFrameData,
    SignalTrack,
)

# Array names that do not describe the quantity. A stream from such an array is
# named after the file.
_GENERIC_ARRAY_NAMES = frozenset({"counts", "samples", "data", "values", "x"})


def read_npz(path: Path, options: ReadOptions) -> Recording:
    """Read the largest numeric array of an NPZ file as one signal stream.

    The array is (samples,), (samples, channels) or (captures, samples,
    channels). A scalar ``sample_rate_hz`` array gives the rate, a string
    array with one distinct entry per channel gives the channel names, and a
    scalar ``scale_<unit>_per_count`` array gives the scale and unit of
    integer counts. String arrays with one entry per capture become string
    metrics, with a point wherever the label changes.
    """
    arrays = _load(path)
    key, data = _main_array(path, arrays)
    captures = data.reshape((1, *data.shape)) if data.ndim < 3 else data
    if captures.ndim == 2:
        captures = captures[:, :, np.newaxis]
    capture_count, capture_len, channel_count = captures.shape
    rate = _rate(path, arrays, options)
    step = interval_ns(rate)
    encoding, scale, unit = _encoding(arrays, data)
    spacing_ns = capture_len * step + round(options.capture_gap_s * 1e9)
    size = default_frame_samples(step, options.frame_samples)

    frames: list[SignalFrameData] = []
    for index in range(capture_count):
        raw = encode_values(captures[index], encoding, scale)
        frames.extend(frames_from_regular(raw, index * spacing_ns, step, size))
    prefix, quantity = _stream_parts(path, key)
    channels = tuple(
        Channel(name, unit) for name in _channel_names(arrays, channel_count)
    )
    track = SignalTrack(f"{prefix}/{quantity}", channels, step, encoding, scale, frames)

    recording = Recording(path, signals=[track])
    recording.metrics.extend(_labels(arrays, capture_count, spacing_ns, prefix))
    scale_text = f" with scale {scale:g}" if scale is not None else ""
    recording.notes.append(
        f"{capture_count} capture(s) of {capture_len} samples x {channel_count} "
        f"channel(s) at {rate:g} Hz, sent as {encoding}{scale_text}"
    )
    if capture_count > 1:
        recording.notes.append(
            "captures were recorded separately, so they are placed "
            f"{options.capture_gap_s:g} s apart"
        )
    return recording


def _load(path: Path) -> dict[str, SampleArray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise RecordingError(
            f"{path.name!r} is not a readable NPZ file ({exc}); "
            "write it with numpy.savez or numpy.savez_compressed"
        ) from exc


def _main_array(path: Path, arrays: dict[str, SampleArray]) -> tuple[str, SampleArray]:
    numeric = {
        key: value
        for key, value in arrays.items()
        if value.dtype.kind in "iuf" and value.ndim >= 1 and value.size > 1
    }
    if not numeric:
        raise RecordingError(
            f"{path.name!r} contains no numeric array with more than one value"
        )
    key = max(numeric, key=lambda name: numeric[name].size)
    if numeric[key].ndim > 3:
        raise RecordingError(
            f"array {key!r} in {path.name!r} has shape {numeric[key].shape}; "
            "expected (samples,), (samples, channels) or (captures, samples, channels)"
        )
    return key, numeric[key]


def _rate(path: Path, arrays: dict[str, SampleArray], options: ReadOptions) -> float:
    if options.sample_rate_hz is not None:
        return options.sample_rate_hz
    stored = arrays.get("sample_rate_hz")
    if stored is not None and stored.ndim == 0 and float(stored) > 0:
        return float(stored)
    named = rate_from_name(path)
    if named is None:
        raise RecordingError(
            f"{path.name!r} has no sample_rate_hz array and no <N>hz in its name; "
            "pass the rate with --sample-rate-hz"
        )
    return named


def _encoding(
    arrays: dict[str, SampleArray], data: SampleArray
) -> tuple[str, float | None, str]:
    """Return the encoding, scale and channel unit of the main array."""
    scale_keys = [
        k for k in sorted(arrays) if k.startswith("scale") and arrays[k].ndim == 0
    ]
    if scale_keys and data.dtype.kind in "iu":
        match = re.fullmatch(r"scale_(.+)_per_count", scale_keys[0])
        unit = match.group(1) if match else ""
        return integer_encoding(data), float(arrays[scale_keys[0]]), unit
    encoding, scale = choose_encoding(data)
    return encoding, scale, ""


def _channel_names(arrays: dict[str, SampleArray], count: int) -> list[str]:
    for key in sorted(arrays):
        value = arrays[key]
        if value.dtype.kind != "U" or value.shape != (count,):
            continue
        names = [slug(str(name)) for name in value.tolist()]
        if len(set(names)) == count:
            return names
    return [f"ch{index}" for index in range(count)] if count > 1 else ["value"]


def _stream_parts(path: Path, key: str) -> tuple[str, str]:
    words = [word for word in re.split(r"[_\-.]+", path.stem.lower()) if word]
    prefix = slug(words[0]) if words else "replay"
    if key.lower() in _GENERIC_ARRAY_NAMES and len(words) > 1:
        return prefix, slug(words[1])
    return prefix, slug(key)


def _labels(
    arrays: dict[str, SampleArray], capture_count: int, spacing_ns: int, prefix: str
) -> list[MetricTrack]:
    if capture_count < 2:
        return []
    tracks = []
    for key in sorted(arrays):
        value = arrays[key]
        if value.dtype.kind != "U" or value.shape != (capture_count,):
            continue
        labels = [str(label) for label in value.tolist()]
        changes = [
            i for i in range(capture_count) if i == 0 or labels[i] != labels[i - 1]
        ]
        offsets = np.array([i * spacing_ns for i in changes], dtype=np.int64)
        values = [labels[i] for i in changes]
        tracks.append(MetricTrack(f"{prefix}/{slug(key)}", "", offsets, values))
    return tracks

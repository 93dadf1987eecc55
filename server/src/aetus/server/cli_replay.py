"""``aetus replay``: read a recording and stream it as a device through the SDK."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from aetus.server import cli_client, cli_output
from aetus.server.checks import ID_CHARACTERS, ID_PATTERN
from aetus.server.credentials import (
    CredentialError,
    admin_token_path,
    device_token_path,
    read_token_file,
    write_token_file,
)
from aetus.server.recordings import ReadOptions, Recording, read_recording
from aetus.server.replay import (
    default_start_time_ns,
    replay_recording,
    schedule_recording,
)

if TYPE_CHECKING:
    from aetus.sdk import BatchRejected

__all__ = ["run"]


async def run(args: argparse.Namespace) -> int:
    """Run ``aetus replay`` and return its exit status."""
    check_device_id(args.device)
    options = ReadOptions(
        sample_rate_hz=args.sample_rate_hz,
        frame_samples=args.frame_samples,
        missing=args.missing,
        missing_value=args.missing_value,
        capture_gap_s=args.capture_gap_s,
        stream=args.stream,
        as_metrics=args.as_metrics,
    )
    recording = read_recording(args.file, options)
    rate = None if args.as_fast_as_possible else args.rate
    if rate is not None and not rate > 0:
        raise cli_client.CommandError(
            f"--rate {rate!r} is invalid; give a speed-up above 0"
        )
    start_ns = cli_output.parse_time(args.start_time, "--start-time")
    if start_ns is None:
        start_ns = default_start_time_ns(recording, rate)
    _describe(recording, start_ns, rate)
    if args.dry_run:
        return 0
    return await _send(args, recording, rate, start_ns)


def check_device_id(device_id: str) -> None:
    """Check ``device_id`` against the server's rule for device ids.

    Raises:
        CommandError: The id is empty, too long or has other characters.
    """
    from aetus.server.services.devices import MAX_ID_LENGTH

    if not device_id:
        raise cli_client.CommandError("--device is empty; give the device id")
    if len(device_id) > MAX_ID_LENGTH:
        raise cli_client.CommandError(
            f"--device {device_id!r} has {len(device_id)} characters, over the "
            f"limit of {MAX_ID_LENGTH}; give a shorter device id"
        )
    if not ID_PATTERN.fullmatch(device_id):
        raise cli_client.CommandError(
            f"--device {device_id!r} is invalid: a device id may contain only "
            f"{ID_CHARACTERS}"
        )


def _describe(recording: Recording, start_ns: int, rate: float | None) -> None:
    out = sys.stdout
    out.write(f"Recording {recording.path.name}: {recording.duration_ns / 1e9:.3f} s\n")
    for note in recording.notes:
        out.write(f"  {note}\n")
    for track in recording.signals:
        channels = ", ".join(f"{c.name} [{c.unit}]" for c in track.channels)
        out.write(
            f"  signal {track.stream}: {len(track.frames)} frames, "
            f"{track.sample_count} samples per channel ({channels})\n"
        )
    for metric in recording.metrics:
        out.write(f"  metric {metric.name}: {len(metric.offsets_ns)} points\n")
    pace = "as fast as possible" if rate is None else f"at {rate:g}x the recorded pace"
    items = len(schedule_recording(recording))
    out.write(
        f"First sample at {cli_output.format_time_ns(start_ns)}; "
        f"{items} frames and metric windows sent {pace}\n"
    )
    out.flush()


async def _send(
    args: argparse.Namespace, recording: Recording, rate: float | None, start_ns: int
) -> int:
    from aetus.sdk import AsyncClient, DeviceIdentity

    token = await _device_token(args)
    rejections: list[BatchRejected] = []
    began = time.monotonic()
    async with AsyncClient(cli_client.target_from(args), token=token) as client:
        await cli_client.check_reachable(client)
        stream = client.open_stream(on_rejection=rejections.append)
        try:
            report = await replay_recording(
                recording,
                stream,
                DeviceIdentity(args.device),
                rate=rate,
                start_time_ns=start_ns,
            )
        finally:
            result = await stream.close()
    elapsed = time.monotonic() - began
    for rejection in rejections:
        print(
            f"batch {rejection.batch_number} rejected ({len(rejection.events)} "
            f"events): {rejection.error}",
            file=sys.stderr,
        )
    print(
        f"Sent {report.events} events ({report.frames} frames, "
        f"{report.metric_points} metric points) as {args.device} in {elapsed:.1f} s: "
        f"{result.accepted_count} stored, {result.duplicate_count} already stored, "
        f"{result.rejected_event_count} rejected, {result.unacked_event_count} unacked"
    )
    if result.error is not None:
        print(f"stream failed: {result.error}", file=sys.stderr)
    return 0 if result.complete and not rejections else 1


async def _device_token(args: argparse.Namespace) -> str:
    """Find the device's token, or provision the device with the admin token."""
    data_dir = cli_client.data_dir_from(args)
    try:
        if args.token_file is not None:
            return read_token_file(args.token_file)
        if os.environ.get("AETUS_TOKEN"):
            return os.environ["AETUS_TOKEN"]
        saved_token = device_token_path(data_dir, args.device)
        if saved_token.is_file():
            return read_token_file(saved_token)
        admin_path = admin_token_path(data_dir)
        if not admin_path.is_file():
            raise cli_client.CommandError(
                f"no token for device {args.device!r}: pass --token-file, set "
                f"AETUS_TOKEN, or point --data-dir at the folder holding admin-token "
                f"({admin_path} does not exist)"
            )
        admin = read_token_file(admin_path)
    except CredentialError as exc:
        raise cli_client.CommandError(str(exc)) from exc
    return await _provision(args, admin, saved_token)


async def _provision(args: argparse.Namespace, admin_token: str, keep_at: Path) -> str:
    from aetus.sdk import AsyncClient

    async with AsyncClient(cli_client.target_from(args), token=admin_token) as client:
        device_id, token = await cli_client.provision_device(
            client, args.device, device_id=args.device, model="replay"
        )
    write_token_file(keep_at, token)
    print(f"Provisioned device {device_id}; its token is kept in {keep_at}")
    return token

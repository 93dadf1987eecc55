"""Client subcommands of ``aetus``: replay, read, devices and provision.

They talk to a running server through the SDK. Credentials come from
``--token-file``, then ``AETUS_TOKEN``, then the files that ``aetus up`` keeps
in the data folder (``admin-token`` and ``device-tokens/<device>.token``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from aetus.server import cli_output
from aetus.server.credentials import (
    CredentialError,
    admin_token_path,
    device_token_path,
    read_token_file,
    write_token_file,
)

if TYPE_CHECKING:
    from aetus.sdk import AsyncClient

__all__ = ["CommandError", "add_client_commands"]

DEFAULT_TARGET = "127.0.0.1:50051"

# How long a command waits for the first connection before it gives up, in seconds.
CONNECT_TIMEOUT_S = 5.0

T = TypeVar("T")


class CommandError(Exception):
    """A command cannot run. The message names the cause and what to change."""


# The type of ``add_subparsers()``, which argparse exposes only under this name.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_client_commands(commands: Subcommands) -> None:
    """Add replay, read, devices and provision to the ``aetus`` parser."""
    _add_replay(commands)
    _add_read(commands)
    _add_devices(commands)
    _add_provision(commands)


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default=None,
        metavar="HOST:PORT",
        help="gRPC server or Envoy front door "
        f"(AETUS_TARGET; default: {DEFAULT_TARGET})",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="file holding the bearer token (else AETUS_TOKEN, else the data folder)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="PATH",
        help="data folder of `aetus up`, where tokens are kept "
        "(AETUS_DATA_DIR; default: data)",
    )


def _add_replay(commands: Subcommands) -> None:
    replay = commands.add_parser(
        "replay",
        help="stream a CSV or NPZ recording as a device",
        description="Stream a recording as a device through the SDK's bidi stream: "
        "regularly sampled data as signal frames, hourly or irregular data as "
        "metrics. Without a token, the device is provisioned with the admin token "
        "of the data folder and its token is kept there.",
    )
    replay.add_argument("file", type=Path, metavar="FILE", help="CSV or NPZ recording")
    replay.add_argument("--device", required=True, help="device id to send as")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="speed-up over the recorded pace (default: 1.0, the true rate)",
    )
    pace.add_argument(
        "--as-fast-as-possible",
        action="store_true",
        help="send without waiting, as fast as the server acknowledges",
    )
    replay.add_argument(
        "--start-time",
        default=None,
        metavar="TIME",
        help="clock time of the first sample, ISO 8601 with a zone "
        "(default: now at rate 1, else so that the replay ends now)",
    )
    _add_reader_flags(replay)
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="read the file and print what would be sent, without sending",
    )
    _add_connection_flags(replay)
    replay.set_defaults(handler=_run_replay)


def _add_reader_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample-rate-hz",
        type=float,
        default=None,
        help="sample rate of a file without a time column or rate array",
    )
    parser.add_argument(
        "--frame-samples",
        type=int,
        default=None,
        help="samples per channel in one frame (default: about one second)",
    )
    parser.add_argument(
        "--missing",
        choices=["skip", "nan"],
        default="skip",
        help="a missing metric reading is skipped or sent as NaN (default: skip)",
    )
    parser.add_argument(
        "--missing-value",
        type=float,
        default=None,
        help="sentinel that marks a missing reading "
        "(default: -200 for the UCI air-quality columns)",
    )
    parser.add_argument(
        "--capture-gap-s",
        type=float,
        default=1.0,
        help="seconds between separately recorded NPZ captures (default: 1.0)",
    )
    parser.add_argument(
        "--stream",
        default=None,
        help="name for the signal stream of a file that has exactly one",
    )
    parser.add_argument(
        "--as-metrics",
        action="store_true",
        help="send a densely sampled CSV as metrics with its recorded times",
    )


def _add_read(commands: Subcommands) -> None:
    read = commands.add_parser(
        "read",
        help="print a stream of a device",
        description="Print a stream of a device as a table, or as CSV with --csv. "
        "Gap markers print as 'gap' and readings stored without a value as "
        "'missing'. Without --stream, list the device's streams.",
    )
    read.add_argument("--device", required=True, help="device id")
    read.add_argument("--stream", default=None, help="metric or signal stream name")
    read.add_argument(
        "--start",
        default=None,
        metavar="TIME",
        help="start of the range: ISO 8601 with a zone, or a time before now "
        "written as --start=-30s, -5m, -2h or -1d",
    )
    read.add_argument(
        "--end", default=None, metavar="TIME", help="end of the range, as --start"
    )
    read.add_argument(
        "--max-points",
        type=int,
        default=None,
        help="points per channel; longer ranges come back as min/max buckets "
        "(default: the server's, 2000)",
    )
    read.add_argument(
        "--channel",
        action="append",
        default=[],
        help="channel of a signal stream to read; repeat for several (default: all)",
    )
    read.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    _add_connection_flags(read)
    read.set_defaults(handler=_run_read)


def _add_devices(commands: Subcommands) -> None:
    devices = commands.add_parser(
        "devices",
        help="list registered devices",
        description="List registered devices, most recently seen first.",
    )
    devices.add_argument(
        "--query", default="", help="substring of device id, hardware id, model or site"
    )
    _add_connection_flags(devices)
    devices.set_defaults(handler=_run_devices)


def _add_provision(commands: Subcommands) -> None:
    provision = commands.add_parser(
        "provision",
        help="register a device and issue its token",
        description="Register a device and issue its bearer token with the admin "
        "token. Provisioning a known hardware id issues a new token, and the old "
        "one stops working. The token is written to the data folder.",
    )
    provision.add_argument(
        "hardware_id", metavar="HARDWARE_ID", help="stable hardware id"
    )
    provision.add_argument(
        "--device-id", default="", help="device id (default: HARDWARE_ID)"
    )
    provision.add_argument(
        "--model", default="", help="hardware model, such as esp32c5"
    )
    provision.add_argument("--site", default="", help="site or group of the device")
    provision.add_argument(
        "--print-token",
        action="store_true",
        help="also print the token; it is shown only this once",
    )
    _add_connection_flags(provision)
    provision.set_defaults(handler=_run_provision)


def data_dir_from(args: argparse.Namespace) -> Path:
    """Return the data folder from --data-dir, AETUS_DATA_DIR or ``data``."""
    if args.data_dir is not None:
        return Path(args.data_dir)
    return Path(os.environ.get("AETUS_DATA_DIR") or "data")


def target_from(args: argparse.Namespace) -> str:
    """Return the server address from --target, AETUS_TARGET or the default."""
    return str(args.target or os.environ.get("AETUS_TARGET") or DEFAULT_TARGET)


def admin_token_from(args: argparse.Namespace) -> str:
    """Return the token of an admin or read call.

    Raises:
        CommandError: No token in --token-file, AETUS_TOKEN or the data folder.
    """
    try:
        if args.token_file is not None:
            return read_token_file(args.token_file)
        if os.environ.get("AETUS_TOKEN"):
            return os.environ["AETUS_TOKEN"]
        path = admin_token_path(data_dir_from(args))
        if path.is_file():
            return read_token_file(path)
    except CredentialError as exc:
        raise CommandError(str(exc)) from exc
    raise CommandError(
        f"no token: {path} does not exist; pass --token-file, set AETUS_TOKEN, "
        "or point --data-dir at the data folder of the running server"
    )


def _client(args: argparse.Namespace, token: str) -> AsyncClient:
    from aetus.sdk import AsyncClient

    return AsyncClient(target_from(args), token=token)


def _run_replay(args: argparse.Namespace) -> int:
    from aetus.server import cli_replay

    return asyncio.run(cli_replay.run(args))


def _run_read(args: argparse.Namespace) -> int:
    return asyncio.run(_read(args))


async def _read(args: argparse.Namespace) -> int:
    start = cli_output.parse_time(args.start, "--start")
    end = cli_output.parse_time(args.end, "--end")
    async with _client(args, admin_token_from(args)) as client:
        if args.stream is None:
            streams = await _call(client.list_streams(args.device), client)
            cli_output.print_streams(streams, sys.stdout, as_csv=args.csv)
            return 0
        data = await _call(
            client.read_stream(
                args.device,
                args.stream,
                start_time=start,
                end_time=end,
                channels=args.channel,
                max_points=args.max_points,
            ),
            client,
        )
    cli_output.print_stream_data(data, sys.stdout, as_csv=args.csv)
    return 0


def _run_devices(args: argparse.Namespace) -> int:
    return asyncio.run(_devices(args))


async def _devices(args: argparse.Namespace) -> int:
    from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc

    async with _client(args, admin_token_from(args)) as client:
        stub = device_service_pb2_grpc.DeviceServiceStub(client.channel)
        devices: list[device_service_pb2.Device] = []
        request = device_service_pb2.ListDevicesRequest(
            page_size=1000, query=args.query
        )
        while True:
            response = await _call(
                stub.ListDevices(request, metadata=client.metadata), client
            )
            devices.extend(response.devices)
            if not response.next_page_token:
                break
            request.page_token = response.next_page_token
    cli_output.print_devices(devices, sys.stdout)
    return 0


def _run_provision(args: argparse.Namespace) -> int:
    return asyncio.run(_provision(args))


async def _provision(args: argparse.Namespace) -> int:
    async with _client(args, admin_token_from(args)) as client:
        device_id, token = await provision_device(
            client,
            args.hardware_id,
            device_id=args.device_id,
            model=args.model,
            site=args.site,
        )
    path = device_token_path(data_dir_from(args), device_id)
    write_token_file(path, token)
    print(f"Provisioned device {device_id}; its token is in {path}")
    if args.print_token:
        print(token)
    return 0


async def provision_device(
    client: AsyncClient,
    hardware_id: str,
    *,
    device_id: str = "",
    model: str = "",
    site: str = "",
) -> tuple[str, str]:
    """Register a device with the client's admin token.

    Returns:
        The device id and its new token.

    Raises:
        CommandError: The server rejected the call.
    """
    from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc

    stub = device_service_pb2_grpc.DeviceServiceStub(client.channel)
    request = device_service_pb2.ProvisionDeviceRequest(
        device_id=device_id, hardware_id=hardware_id, model=model, site=site
    )
    response = await _call(
        stub.ProvisionDevice(request, metadata=client.metadata), client
    )
    return response.device.device_id, response.token


async def _call(awaitable: Awaitable[T], client: AsyncClient) -> T:
    """Await a call made with ``client``; raise its failure as a CommandError."""
    import grpc

    from aetus.sdk import AetusError, UnavailableError

    target = client.settings.target
    try:
        return await awaitable
    except grpc.aio.AioRpcError as exc:
        message = f"{exc.code().name}: {exc.details()}"
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            message = unreachable_message(target, message)
        raise CommandError(message) from exc
    except UnavailableError as exc:
        raise CommandError(unreachable_message(target, str(exc))) from exc
    except AetusError as exc:
        raise CommandError(str(exc)) from exc


async def check_reachable(
    client: AsyncClient, timeout_s: float = CONNECT_TIMEOUT_S
) -> None:
    """Wait until the client's channel connects.

    Streams reconnect without end, so a command that only streams checks the
    connection first instead of retrying against a server that is not there.

    Raises:
        CommandError: No connection within ``timeout_s``.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await client.channel.channel_ready()
    except TimeoutError:
        detail = f"no connection within {timeout_s:g} s"
        raise CommandError(
            unreachable_message(client.settings.target, detail)
        ) from None


def unreachable_message(target: str, detail: str) -> str:
    """Explain a failed connection: the target tried and how to fix it."""
    return (
        f"cannot reach the AETUS server at {target} ({detail}); start it with "
        "`aetus up` (or `aetus serve`), or choose another address with --target "
        "or AETUS_TARGET"
    )

"""The ``aetus`` command: run the server or the whole stack, replay and read data.

Every setting comes from its flag, then its ``AETUS_*`` environment variable,
then its default. Tokens are never taken as flags, since other users of the
machine can read command lines; they come from files or the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aetus.server import cli_client
from aetus.server.cli_output import TimeArgumentError
from aetus.server.config import ENVIRONMENT, Settings
from aetus.server.credentials import CredentialError
from aetus.server.native_memory import limit_malloc_arenas
from aetus.server.recordings import RecordingError

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

# Errors caused by the command line or its files: printed without a traceback.
_USER_ERRORS = (
    cli_client.CommandError,
    CredentialError,
    RecordingError,
    TimeArgumentError,
)

_DESCRIPTION = """\
AETUS moves telemetry from devices into durable storage and serves it back.

Start with `aetus up`: it runs the gRPC server, the Envoy front door and a demo
device that streams this machine's live measurements.
"""

_SETTINGS_EPILOG = """\
Each flag falls back to the environment variable named in its help, then to
its default.
"""

# Server settings offered as flags, with their help text.
_SERVER_FLAGS = {
    "data_dir": "folder of the embedded store and generated credentials",
    "grpc_address": "host:port of the gRPC server",
    "max_request_bytes": "largest HTTP request body accepted, in bytes",
    "max_grpc_message_bytes": "largest gRPC message the server receives, in bytes",
    "max_events_per_batch": "most events in one ingest request or stream batch",
}
_FRONT_DOOR_FLAGS = {
    "http_address": "host:port of the Envoy front door (HTTP/JSON and gRPC)",
    "envoy_admin_address": "host:port of Envoy's admin interface; keep it on loopback",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aetus`` command and return its exit status."""
    # Before any thread starts, so the server's RSS does not grow with the
    # number of threads that have allocated.
    limit_malloc_arenas()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        status: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output (for example `head`) exited; stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except _USER_ERRORS as exc:
        print(f"aetus {args.command}: {exc}", file=sys.stderr)
        return 2
    return status


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="aetus",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("AETUS_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        type=str.lower,
        help="log detail (AETUS_LOG_LEVEL; default: info)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_up(commands)
    cli_client.add_client_commands(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the gRPC server only",
        description="Run the gRPC server with the embedded store, until Ctrl-C "
        "or SIGTERM. It stops after every acknowledged event is durable.",
        epilog=_SETTINGS_EPILOG,
    )
    _add_setting_flags(serve, _SERVER_FLAGS)
    serve.set_defaults(handler=_run_serve)


def _add_up(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser(
        "up",
        help="run the server, Envoy and the demo device together",
        description="Run the whole embedded stack: the gRPC server, the Envoy "
        "front door and a demo device that streams this machine's live "
        "measurements. Ctrl-C or SIGTERM stops every process it started.",
        epilog=_SETTINGS_EPILOG,
    )
    _add_setting_flags(up, {**_SERVER_FLAGS, **_FRONT_DOOR_FLAGS})
    up.add_argument(
        "--no-demo",
        action="store_true",
        help="do not start the demo device",
    )
    up.set_defaults(handler=_run_up)


def _add_setting_flags(parser: argparse.ArgumentParser, flags: dict[str, str]) -> None:
    defaults = Settings()
    for name, text in flags.items():
        default = getattr(defaults, name)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            type=type(default) if not isinstance(default, Path) else Path,
            metavar=_metavar(name, default),
            help=f"{text} ({ENVIRONMENT[name]}; default: {default})",
        )


def _metavar(name: str, default: object) -> str:
    if name.endswith("_address"):
        return "HOST:PORT"
    return "PATH" if isinstance(default, Path) else "N"


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build server settings from parsed flags, the environment and defaults.

    Raises:
        cli_client.CommandError: An environment variable contains an invalid value.
    """
    overrides = {name: getattr(args, name, None) for name in ENVIRONMENT}
    try:
        return Settings.load(**overrides)
    except ValueError as exc:
        raise cli_client.CommandError(str(exc)) from exc


def _run_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    from aetus.server import stack

    return asyncio.run(stack.run_server_only(settings))


def _run_up(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    from aetus.server import stack

    return asyncio.run(stack.run_stack(settings, demo=not args.no_demo))

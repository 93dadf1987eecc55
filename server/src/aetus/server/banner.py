"""The text ``aetus up`` prints once it serves: addresses, token files, commands."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import TextIO

from aetus.server.config import Settings
from aetus.server.credentials import admin_token_path, device_token_path
from aetus.server.demo import DEMO_DEVICE_ID

__all__ = ["first_commands", "print_banner"]


def print_banner(
    settings: Settings,
    out: TextIO,
    *,
    demo: bool,
    demo_provisioned: bool = False,
) -> None:
    """Print the addresses, the credential files and ready-to-paste commands.

    Tokens are never printed, since this output often ends up in log files.
    The commands read them from their files with ``$(cat FILE)``.

    Args:
        settings: Settings with the addresses actually bound.
        out: Where to print.
        demo: Whether the demo device runs.
        demo_provisioned: Whether the demo device was provisioned at this start.
    """
    admin_file = admin_token_path(settings.data_dir)
    token_file = device_token_path(settings.data_dir, DEMO_DEVICE_ID)
    rows = [
        ("Front door (HTTP/JSON, protobuf, gRPC)", f"http://{settings.http_address}"),
        ("gRPC server", settings.grpc_address),
        ("Envoy admin (loopback only)", f"http://{settings.envoy_admin_address}"),
        ("Data folder", str(settings.data_dir)),
        ("Admin token file", str(admin_file)),
    ]
    if demo:
        rows.append((f"Device {DEMO_DEVICE_ID} token file", str(token_file)))
    width = max(len(label) for label, _ in rows)
    lines = ["", "AETUS is running.", ""]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    if demo_provisioned:
        lines += [
            "",
            f"Provisioned the demo device {DEMO_DEVICE_ID}. Its token is in "
            f"{token_file}; the curl /v1/ingest command below sends with it through "
            f'-H "authorization: Bearer $(cat {shlex.quote(str(token_file))})".',
        ]
    lines += ["", "Try it:"]
    lines += ["  " + command for command in first_commands(settings)]
    lines += ["", "Ctrl-C stops everything.", ""]
    out.write("\n".join(lines))
    out.flush()


def first_commands(settings: Settings) -> list[str]:
    """Return grpcurl and curl commands that work against this stack."""
    admin = shlex.quote(str(admin_token_path(settings.data_dir)))
    device = shlex.quote(str(device_token_path(settings.data_dir, DEMO_DEVICE_ID)))
    grpc = settings.grpc_address
    front = f"http://{settings.http_address}"
    batch = {
        "events": [
            {
                "device_id": DEMO_DEVICE_ID,
                "boot_id": "curl-boot-1",
                "sequence": "1",
                "metrics": {
                    "metrics": [
                        {
                            "name": "env/temperature",
                            "unit": "degC",
                            "double_value": 21.5,
                        }
                    ]
                },
            }
        ]
    }
    body = shlex.quote(json.dumps(batch, separators=(",", ":")))
    grpcurl = _grpcurl_command()
    return [
        f"{grpcurl} -plaintext {grpc} list",
        f'{grpcurl} -plaintext -H "authorization: Bearer $(cat {admin})" '
        f'-d \'{{"device_id": "{DEMO_DEVICE_ID}"}}\' '
        f"{grpc} aetus.query.v1.QueryService/ListStreams",
        f'curl -sS -H "authorization: Bearer $(cat {admin})" '
        f"{front}/v1/devices/{DEMO_DEVICE_ID}/streams",
        f'curl -sS -X POST -H "authorization: Bearer $(cat {device})" '
        f"-H 'content-type: application/json' -d {body} {front}/v1/ingest",
    ]


def _grpcurl_command() -> str:
    """Return how to run grpcurl: by name when on PATH, else the venv's copy."""
    if shutil.which("grpcurl"):
        return "grpcurl"
    bundled = Path(sys.executable).parent / "grpcurl"
    if not bundled.exists():
        return "grpcurl"
    try:
        return shlex.quote(str(bundled.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(bundled))

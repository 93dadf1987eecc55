"""``aetus up`` as a real subprocess: banner, live demo data, clean stop, restart."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from aetus.sdk import AsyncClient

pytestmark = [pytest.mark.slow, pytest.mark.envoy]

_BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


@dataclass
class Stack:
    """A running ``aetus up`` process and what its banner printed."""

    process: subprocess.Popen[str]
    banner: str
    grpc_address: str
    http_address: str
    admin_address: str

    def child_pids(self) -> list[int]:
        """Return the process ids of every process the stack started."""
        children = psutil.Process(self.process.pid).children(recursive=True)
        return [child.pid for child in children]

    def stop(self) -> tuple[int, str]:
        """Send SIGTERM and return the exit status and the rest of the output."""
        self.process.send_signal(signal.SIGTERM)
        rest, _ = self.process.communicate(timeout=STOP_TIMEOUT_S)
        return self.process.returncode, rest


def _start(data_dir: Path) -> Stack:
    env = {
        **os.environ,
        "AETUS_DATA_DIR": str(data_dir),
        "AETUS_GRPC_ADDRESS": "127.0.0.1:0",
        "AETUS_HTTP_ADDRESS": "127.0.0.1:0",
        "AETUS_ENVOY_ADMIN_ADDRESS": "127.0.0.1:0",
        "AETUS_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [str(_BIN / "aetus"), "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything." in line:
            banner = "".join(lines)
            return Stack(
                process,
                banner,
                _field(banner, r"gRPC server\s+(\S+)"),
                _field(banner, r"Front door \S+ \S+ \S+\s+http://(\S+)"),
                _field(banner, r"Envoy admin \S+ \S+\s+http://(\S+)"),
            )
    _kill(process)
    raise AssertionError("aetus up printed no banner:\n" + "".join(lines))


def _kill(process: subprocess.Popen[str]) -> None:
    """Kill the process if it still runs, and close its output pipe."""
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=STOP_TIMEOUT_S)


def _field(banner: str, pattern: str) -> str:
    match = re.search(pattern, banner)
    assert match, f"{pattern!r} not found in the banner:\n{banner}"
    return match.group(1)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def stack(data_dir: Path) -> Iterator[Stack]:
    running = _start(data_dir)
    try:
        yield running
    finally:
        _kill(running.process)


async def _streams(address: str, token: str, device: str) -> dict[str, object]:
    async with AsyncClient(address, token=token) as client:
        return {stream.name: stream for stream in await client.list_streams(device)}


async def _wait_for_streams(
    address: str, token: str, names: set[str], timeout_s: float = 20.0
) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    streams: dict[str, object] = {}
    while time.monotonic() < deadline:
        streams = await _streams(address, token, "demo-host")
        if names <= set(streams):
            return streams
        await asyncio.sleep(0.5)
    raise AssertionError(f"streams {sorted(names)} missing; found {sorted(streams)}")


def _run_shell(command: str) -> str:
    env = {**os.environ, "PATH": f"{_BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _banner_command(banner: str, prefix: str, contains: str) -> str:
    for line in banner.splitlines():
        line = line.strip()
        program = Path(line.split(" ", 1)[0]).name if line else ""
        if program == prefix and contains in line:
            return line
    raise AssertionError(f"no {prefix!r} command with {contains!r} in:\n{banner}")


async def test_up_banner_and_demo_data(stack: Stack, data_dir: Path) -> None:
    admin_token = (data_dir / "admin-token").read_text().strip()
    token_file = data_dir / "device-tokens" / "demo-host.token"
    demo_token = token_file.read_text().strip()

    assert demo_token not in stack.banner
    assert admin_token not in stack.banner
    assert "aetus_dev_" not in stack.banner
    assert f"Its token is in {token_file}" in stack.banner

    assert f"Admin token file                        {data_dir}/admin-token" in (
        stack.banner
    )
    assert "Provisioned the demo device demo-host" in stack.banner
    assert stack.http_address.startswith("127.0.0.1:")
    assert stack.admin_address.startswith("127.0.0.1:")
    streams = await _wait_for_streams(
        stack.grpc_address,
        admin_token,
        {"host/wake_latency", "cpu/utilization", "memory/total", "load/1m"},
    )

    latency = streams["host/wake_latency"]
    assert latency.nominal_rate_hz == pytest.approx(200.0)
    assert latency.point_count >= 200
    memory = streams["memory/total"]
    assert memory.unit == "B"


async def test_up_banner_commands_work(stack: Stack, data_dir: Path) -> None:
    admin_token = (data_dir / "admin-token").read_text().strip()
    await _wait_for_streams(stack.grpc_address, admin_token, {"host/wake_latency"})

    listing = _run_shell(_banner_command(stack.banner, "grpcurl", " list"))
    posted = _run_shell(_banner_command(stack.banner, "curl", "/v1/ingest"))
    streams = _run_shell(_banner_command(stack.banner, "curl", "/streams"))
    called = _run_shell(_banner_command(stack.banner, "grpcurl", "ListStreams"))

    assert "aetus.ingest.v1.IngestService" in listing
    assert "aetus.query.v1.QueryService" in listing
    assert '"acceptedCount":1' in posted.replace(" ", "")
    assert "host/wake_latency" in streams
    assert "host/wake_latency" in called


async def test_up_sigterm_stops_children_and_restart_finds_data(
    stack: Stack, data_dir: Path
) -> None:
    admin_token = (data_dir / "admin-token").read_text().strip()
    token_file = data_dir / "device-tokens" / "demo-host.token"
    demo_token = token_file.read_text()
    before = await _wait_for_streams(
        stack.grpc_address, admin_token, {"cpu/utilization"}
    )
    children = stack.child_pids()
    assert children, "aetus up started no child process (Envoy)"

    status, rest = stack.stop()

    assert status == 0, rest
    assert "Stopped. Every acknowledged event is stored." in rest
    assert [pid for pid in children if psutil.pid_exists(pid)] == []

    again = _start(data_dir)
    try:
        assert "Provisioned the demo device" not in again.banner
        assert token_file.read_text() == demo_token
        after = await _streams(again.grpc_address, admin_token, "demo-host")
        assert after["cpu/utilization"].point_count >= (
            before["cpu/utilization"].point_count
        )
        assert (
            after["cpu/utilization"].first_time == before["cpu/utilization"].first_time
        )
        status, rest = again.stop()
        assert status == 0, rest
    finally:
        _kill(again.process)


def test_up_port_in_use_names_setting(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        env = {**os.environ, "AETUS_DATA_DIR": str(data_dir)}
        result = subprocess.run(
            [str(_BIN / "aetus"), "up", "--http-address", address,
             "--grpc-address", "127.0.0.1:0", "--envoy-admin-address", "127.0.0.1:0"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip

    assert result.returncode == 1
    assert f"port {address} (http_address) is already in use" in result.stderr
    assert "--http-address or AETUS_HTTP_ADDRESS" in result.stderr


def test_up_envoy_killed_exits_nonzero(stack: Stack, data_dir: Path) -> None:
    envoy = psutil.Process(stack.child_pids()[0])
    assert "envoy" in envoy.name()

    envoy.send_signal(signal.SIGKILL)
    rest, _ = stack.process.communicate(timeout=STOP_TIMEOUT_S)

    assert stack.process.returncode == 1, rest
    assert f"Envoy (PID {envoy.pid}) stopped unexpectedly" in rest
    assert f"its log is {data_dir / 'envoy' / 'envoy.log'}" in rest
    assert "Every acknowledged event is stored" not in rest


def _serve(data_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "AETUS_DATA_DIR": str(data_dir), "AETUS_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [str(_BIN / "aetus"), "serve", "--grpc-address", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if "AETUS gRPC server on" not in line:
        _kill(process)
        raise AssertionError(f"aetus serve did not start: {line}")
    return process


@pytest.mark.parametrize("command", ["serve", "up"])
def test_up_data_dir_in_use_names_process(data_dir: Path, command: str) -> None:
    holder = _serve(data_dir)
    try:
        env = {**os.environ, "AETUS_DATA_DIR": str(data_dir)}
        result = subprocess.run(
            [str(_BIN / "aetus"), command, "--grpc-address", "127.0.0.1:0",
             "--http-address", "127.0.0.1:0", "--envoy-admin-address", "127.0.0.1:0"]
            if command == "up"
            else [str(_BIN / "aetus"), command, "--grpc-address", "127.0.0.1:0"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.communicate(timeout=STOP_TIMEOUT_S)

    assert result.returncode == 1, result.stderr
    assert f"data folder {data_dir} is in use by process {holder.pid}" in (
        result.stderr
    )
    assert "--data-dir or AETUS_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr

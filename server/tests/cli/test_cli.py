"""The aetus command: help texts, setting precedence, errors and offline commands."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from aetus.query.v1 import query_service_pb2
from aetus.server import cli
from aetus.server.cli_output import (
    TimeArgumentError,
    channel_units,
    format_time_ns,
    parse_time,
)
from aetus.server.credentials import (
    CredentialError,
    device_token_path,
    read_token_file,
    write_token_file,
)

SUBCOMMANDS = ["serve", "up", "replay", "read", "devices", "provision"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_cli_help_every_subcommand(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])

    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: aetus {command}")
    assert "--help" in text


def test_cli_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])

    text = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in text


def test_cli_console_script_runs() -> None:
    script = Path(sys.executable).with_name("aetus")

    result = subprocess.run(
        [str(script), "up", "--help"], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "AETUS_HTTP_ADDRESS" in result.stdout
    assert "127.0.0.1:9901" in result.stdout


def test_cli_settings_flag_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AETUS_GRPC_ADDRESS", "127.0.0.1:6000")
    monkeypatch.setenv("AETUS_HTTP_ADDRESS", "127.0.0.1:6001")
    args = cli.build_parser().parse_args(["up", "--grpc-address", "127.0.0.1:7000"])

    settings = cli.settings_from_args(args)

    assert settings.grpc_address == "127.0.0.1:7000"
    assert settings.http_address == "127.0.0.1:6001"
    assert settings.envoy_admin_address == "127.0.0.1:9901"


def test_cli_settings_bad_environment_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AETUS_MAX_REQUEST_BYTES", "lots")

    status = cli.main(["serve"])

    assert status == 2
    assert "AETUS_MAX_REQUEST_BYTES='lots'" in capsys.readouterr().err


def test_cli_replay_dry_run_real_file(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = data_dir / "ecg_mitdb208_360hz.csv"

    status = cli.main(
        [
            "replay",
            str(path),
            "--device",
            "ecg-patch-01",
            "--as-fast-as-possible",
            "--start-time",
            "2026-01-01T00:00:00Z",
            "--dry-run",
        ]
    )

    assert status == 0
    out = capsys.readouterr().out
    assert "signal ecg: 300 frames, 108000 samples per channel (ecg [mV])" in out
    assert "First sample at 2026-01-01T00:00:00.000000000Z" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "missing.csv", "--device", "d1", "--dry-run"], "not found"),
        (
            ["replay", "{ecg}", "--device", "d1", "--rate", "0", "--dry-run"],
            "--rate 0.0 is invalid",
        ),
        (
            ["replay", "{ecg}", "--device", "d1", "--start-time", "2026-01-01T00:00"],
            "has no time zone",
        ),
        (
            ["replay", "{ecg}", "--device", "bad id", "--dry-run"],
            "--device 'bad id' is invalid: a device id may contain only letters",
        ),
        (
            ["replay", "{ecg}", "--device", "d" * 129, "--dry-run"],
            "has 129 characters, over the limit of 128",
        ),
    ],
    ids=["missing-file", "zero-rate", "naive-start", "bad-device", "long-device"],
)
def test_cli_replay_bad_input_exits_2(
    data_dir: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ecg = str(data_dir / "ecg_mitdb208_360hz.csv")

    status = cli.main([part.replace("{ecg}", ecg) for part in argv])

    assert status == 2
    assert message in capsys.readouterr().err


def test_cli_read_without_token_names_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AETUS_TOKEN", raising=False)

    status = cli.main(["read", "--device", "d1", "--data-dir", str(tmp_path)])

    assert status == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "admin-token") in error
    assert "--token-file" in error


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "argv",
    [
        ["devices"],
        ["read", "--device", "d1"],
        ["provision", "hw-1"],
        ["replay", "{ecg}", "--device", "d1", "--as-fast-as-possible"],
    ],
    ids=["devices", "read", "provision", "replay"],
)
def test_cli_client_unreachable_names_target(
    data_dir: Path,
    tmp_path: Path,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = f"127.0.0.1:{_free_port()}"
    monkeypatch.setenv("AETUS_TOKEN", "not-a-real-token")
    monkeypatch.setenv("AETUS_TARGET", target)
    monkeypatch.chdir(tmp_path)
    ecg = str(data_dir / "ecg_mitdb208_360hz.csv")

    status = cli.main([part.replace("{ecg}", ecg) for part in argv])

    assert status == 2
    error = capsys.readouterr().err
    assert f"cannot reach the AETUS server at {target}" in error
    assert "`aetus up` (or `aetus serve`)" in error
    assert "--target or AETUS_TARGET" in error
    assert "Traceback" not in error


def test_channel_units_readable() -> None:
    channels = [
        query_service_pb2.Channel(name="x", unit="g"),
        query_service_pb2.Channel(name="v", unit=""),
    ]

    assert channel_units(channels) == "x: g, v: -"


def test_parse_time_iso_and_relative() -> None:
    now = 1_800_000_000_000_000_000

    assert parse_time("2024-05-01T13:00:00+02:00", "--start") == 1_714_561_200 * 10**9
    assert parse_time("2024-05-01T11:00:00.000250Z", "--start") == (
        1_714_561_200 * 10**9 + 250_000
    )
    assert parse_time("-5m", "--start", now_ns=now) == now - 300 * 10**9
    assert parse_time(None, "--start") is None


@pytest.mark.parametrize("text", ["yesterday", "2024-05-01T12:00:00", "-5y"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(TimeArgumentError, match="--end"):
        parse_time(text, "--end")


def test_format_time_ns_keeps_nanoseconds() -> None:
    assert format_time_ns(1_714_561_200_000_000_007) == "2024-05-01T11:00:00.000000007Z"


def test_token_file_written_private(tmp_path: Path) -> None:
    path = device_token_path(tmp_path, "esp32/../x")

    write_token_file(path, "tok-123")

    assert path.parent == tmp_path / "device-tokens"
    assert read_token_file(path) == "tok-123"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_token_file_empty_rejected(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("\n")

    with pytest.raises(CredentialError, match="is empty"):
        read_token_file(path)

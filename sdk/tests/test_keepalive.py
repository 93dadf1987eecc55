"""Client keepalive agrees with the server's ping policy, so idle streams live."""

import grpc
import pytest

from aetus.sdk import KEEPALIVE_OPTIONS, AsyncClient, Client, ClientSettings
from aetus.sdk._config import channel_option_list
from aetus.server import app


def test_keepalive_client_pings_no_faster_than_server_allows() -> None:
    client = dict(KEEPALIVE_OPTIONS)
    server = dict(app.KEEPALIVE_OPTIONS)

    assert client["grpc.keepalive_time_ms"] == 10_000
    assert client["grpc.keepalive_permit_without_calls"] == 1
    assert server[app.MIN_PING_INTERVAL_KEY] <= client["grpc.keepalive_time_ms"]
    assert server["grpc.keepalive_permit_without_calls"] == 1


def test_keepalive_options_reach_the_server_unchanged() -> None:
    settings = app.Settings.load(environ={})

    options = dict(app.server_options(settings))

    for name, value in app.KEEPALIVE_OPTIONS:
        assert options[name] == value


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
async def test_keepalive_caller_option_overrides_default(monkeypatch, sync) -> None:
    opened: list[list[tuple[str, object]]] = []
    open_channel = grpc.aio.insecure_channel

    def record_options(target, options=None, *args, **kwargs):
        opened.append(list(options or []))
        return open_channel(target, options, *args, **kwargs)

    monkeypatch.setattr(grpc.aio, "insecure_channel", record_options)
    caller = [("grpc.keepalive_time_ms", 45_000), ("grpc.primary_user_agent", "t")]

    if sync:
        with Client("127.0.0.1:1", channel_options=caller):
            pass
    else:
        await AsyncClient("127.0.0.1:1", channel_options=caller).close()

    options = opened[0]
    keys = [key for key, _ in options]
    assert options[:2] == caller
    assert keys.count("grpc.keepalive_time_ms") == 1
    assert dict(options)["grpc.keepalive_timeout_ms"] == 20_000
    assert len(keys) == len(set(keys))


def test_keepalive_defaults_without_caller_options() -> None:
    settings = ClientSettings.load(target="127.0.0.1:1")

    options = channel_option_list(settings, ())

    assert options[-len(KEEPALIVE_OPTIONS) :] == list(KEEPALIVE_OPTIONS)
    assert dict(options)["grpc.max_send_message_length"] == settings.max_message_bytes

"""Client keepalive agrees with the server's ping policy, so idle streams live."""

from aetus.sdk import KEEPALIVE_OPTIONS
from aetus.server import app


def test_keepalive_client_pings_no_faster_than_server_allows() -> None:
    client = dict(KEEPALIVE_OPTIONS)
    server = dict(app.KEEPALIVE_OPTIONS)

    assert client["grpc.keepalive_time_ms"] == 10_000
    assert client["grpc.keepalive_permit_without_calls"] == 1
    assert (
        server[app.MIN_PING_INTERVAL_KEY]
        <= client["grpc.keepalive_time_ms"]
    )
    assert server["grpc.keepalive_permit_without_calls"] == 1


def test_keepalive_options_reach_the_server_unchanged() -> None:
    settings = app.Settings.load(environ={})

    options = dict(app.server_options(settings))

    for name, value in app.KEEPALIVE_OPTIONS:
        assert options[name] == value

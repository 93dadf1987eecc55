"""Client settings: keyword argument, then environment, then default."""

import dataclasses
import typing

import pytest

from aetus.sdk import ENVIRONMENT, ClientOptions, ClientSettings


def test_settings_defaults() -> None:
    settings = ClientSettings.load(environ={})

    assert settings.target == "127.0.0.1:50051"
    assert settings.token == ""
    assert settings.max_message_bytes == 4 * 1_048_576
    assert settings.stream_ack_timeout_s == 10.0


def test_settings_argument_beats_environment() -> None:
    environ = {"AETUS_TARGET": "127.0.0.1:1", "AETUS_TIMEOUT_S": "2.5"}

    from_env = ClientSettings.load(environ=environ)
    from_args = ClientSettings.load(environ=environ, target="127.0.0.1:2", timeout_s=1)

    assert from_env.target == "127.0.0.1:1"
    assert from_env.timeout_s == 2.5
    assert from_args.target == "127.0.0.1:2"
    assert from_args.timeout_s == 1


def test_settings_every_field_has_a_variable() -> None:
    names = {item.name for item in dataclasses.fields(ClientSettings)}

    assert set(ENVIRONMENT) == names
    assert all(variable.startswith("AETUS_") for variable in ENVIRONMENT.values())
    assert set(typing.get_type_hints(ClientOptions)) == names - {"target"}


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        (
            {"AETUS_MAX_ATTEMPTS": "three"},
            "AETUS_MAX_ATTEMPTS='three' is not an integer",
        ),
        ({"AETUS_TIMEOUT_S": "soon"}, "AETUS_TIMEOUT_S='soon' is not a number"),
        ({"AETUS_STREAM_LINGER_MS": "0"}, "stream_linger_ms=0 is invalid"),
        ({"AETUS_MAX_MESSAGE_BYTES": "100"}, "below the minimum of 1024"),
    ],
    ids=["int", "float", "zero", "tiny-limit"],
)
def test_settings_bad_values_rejected(environ: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClientSettings.load(environ=environ)


def test_settings_unknown_name_rejected() -> None:
    with pytest.raises(TypeError, match="unknown client settings \\['timeout'\\]"):
        ClientSettings.load(environ={}, timeout=3)

"""``ApiSettings.from_env`` (the CLI's light reading) agrees with ``Settings`` on the API's
address, key and body limit, and refuses what ``Settings`` refuses."""

from __future__ import annotations

import os

import pydantic
import pytest

from flowyard.api_settings import ApiSettings
from flowyard.errors import InvalidInput
from flowyard.settings import Settings

ENVIRONMENTS = [
    {},
    {"FLOWYARD_API_URL": "http://api:4200", "FLOWYARD_API_KEY": "k"},
    {"flowyard_api_url": "http://lower:1", "Flowyard_Api_Key": "mixed"},
    {"FLOWYARD_API_KEY": "", "FLOWYARD_MAX_REQUEST_BYTES": "2048"},
    {"FLOWYARD_MAX_REQUEST_BYTES": "1024", "OTHER_API_URL": "ignored"},
]


@pytest.mark.parametrize("environ", ENVIRONMENTS)
def test_the_light_reading_agrees_with_the_settings(environ, monkeypatch):
    """Names in any case, empty values, defaults: the same three values either way."""
    for name in [n for n in os.environ if n.upper().startswith("FLOWYARD_")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    full = Settings()
    light = ApiSettings.from_env()
    assert (light.api_url, light.api_key, light.max_request_bytes) == (
        full.api_url,
        full.api_key,
        full.max_request_bytes,
    )


@pytest.mark.parametrize("limit", ["1023", "lots", ""])
def test_a_body_limit_settings_refuses_is_refused_naming_the_variable(limit):
    """Below the minimum, or not a number: an error naming FLOWYARD_MAX_REQUEST_BYTES."""
    with pytest.raises(pydantic.ValidationError):
        Settings(max_request_bytes=limit)
    with pytest.raises(InvalidInput, match="FLOWYARD_MAX_REQUEST_BYTES"):
        ApiSettings.from_env({"FLOWYARD_MAX_REQUEST_BYTES": limit})

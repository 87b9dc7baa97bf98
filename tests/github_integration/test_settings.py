"""The github_integration settings: defaults, parsing and one clear line per bad value."""

from __future__ import annotations

import pytest

from mcp_server.common.exceptions import ConfigError
from mcp_server.config import Config


def test_github_defaults() -> None:
    config = Config.from_env({})
    assert config.github_api_url == "https://api.github.com"
    assert config.github_trigger_label == "mlops:train"
    assert (config.github_seconds_between_requests, config.github_seconds_between_writes) == (0.25, 1.0)


def test_github_settings_are_parsed() -> None:
    config = Config.from_env(
        {
            "GITHUB_API_URL": "https://github.example.com/api/v3/",
            "MLOPS_GITHUB_TRIGGER_LABEL": " train-me ",
            "MLOPS_GITHUB_SECONDS_BETWEEN_REQUESTS": "0",
            "MLOPS_GITHUB_SECONDS_BETWEEN_WRITES": "2.5",
        }
    )
    assert config.github_api_url == "https://github.example.com/api/v3"
    assert config.github_trigger_label == "train-me"
    assert (config.github_seconds_between_requests, config.github_seconds_between_writes) == (0.0, 2.5)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MLOPS_GITHUB_SECONDS_BETWEEN_WRITES": "soon"}, "not a number of seconds"),
        ({"MLOPS_GITHUB_SECONDS_BETWEEN_REQUESTS": "-1"}, "out of range"),
        ({"MLOPS_GITHUB_TRIGGER_LABEL": "x" * 51}, "50-character"),
        ({"GITHUB_API_URL": "ftp://github.example.com"}, "not an http"),
        ({"GITHUB_API_URL": "api.github.com"}, "not an http"),
    ],
)
def test_bad_github_settings_stop_start_up_with_one_line(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as error:
        Config.from_env(env)
    assert "\n" not in str(error.value)

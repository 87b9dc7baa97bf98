"""JSON logs on stderr: secrets masked however deeply nested, every line valid JSON."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from mcp_server.common.logger import MASK, JsonFormatter, configure_logging, log_event, redact

GITHUB_TOKEN = "ghp_" + "x9Y8w7V6u5T4s3R2q1P0o9N8m7L6k5J4i3H2"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnop"
SLACK_TOKEN = "xoxb-" + "123456789012-abcdefABCDEF"
SLACK_HOOK = "https://hooks.slack.com/services/T000/B000/" + "XXXXXXXXXXXXXXXX"
DISCORD_HOOK = "https://discord.com/api/webhooks/123/" + "abcdefghijk"
AWS_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"
PASSWORD = "correct-horse-battery-staple"
ALL_SECRETS = (GITHUB_TOKEN, GITHUB_PAT, SLACK_TOKEN, SLACK_HOOK, DISCORD_HOOK, AWS_KEY, PASSWORD)


@pytest.fixture
def log_lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose records are formatted by the server's JsonFormatter into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logger.json")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream
    logger.handlers[:] = []


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line must be one JSON object


def nested_arguments() -> dict[str, Any]:
    return {
        "repo": "octo/demo",
        "channels": [
            {"type": "slack", "webhook_url": SLACK_HOOK, "options": {"api_key": "k-123456"}},
            {"type": "email", "smtp": {"host": "smtp.example.com", "password": PASSWORD}},
        ],
        "auth": {"token": GITHUB_TOKEN, "Authorization": "Bearer abc.def.ghi"},
        "notes": [["deep", {"innocent": f"please use {GITHUB_PAT} for this"}]],
        "message": f"bot token is {SLACK_TOKEN}; aws {AWS_KEY}; discord {DISCORD_HOOK}",
        "Private-Key": "-----BEGIN KEY-----",
        "client_secret": "s3cr3t-value",
    }


def test_redact_masks_secret_keys_at_any_depth() -> None:
    out = redact(nested_arguments())
    assert out["repo"] == "octo/demo"
    assert out["channels"][0]["webhook_url"] == MASK
    assert out["channels"][0]["options"]["api_key"] == MASK
    assert out["channels"][1]["smtp"] == {"host": "smtp.example.com", "password": MASK}
    assert out["auth"] == {"token": MASK, "Authorization": MASK}
    assert out["Private-Key"] == MASK
    assert out["client_secret"] == MASK


def test_redact_masks_token_looking_values_under_innocent_keys() -> None:
    out = redact(nested_arguments())
    assert out["notes"][0][1]["innocent"] == f"please use {MASK} for this"
    assert out["message"] == f"bot token is {MASK}; aws {MASK}; discord {MASK}"
    assert redact(["fine", SLACK_HOOK, ("tuple", GITHUB_TOKEN)]) == ["fine", MASK, ["tuple", MASK]]
    assert redact({"tags": {GITHUB_TOKEN}}) == {"tags": [MASK]}


def test_redact_masks_bearer_headers_and_url_passwords() -> None:
    assert redact("Authorization: Bearer eyJhbGciOi.payload.sig") == f"Authorization: {MASK}"
    assert redact("postgres://admin:pa55word@db:5432/x") == f"postgres://{MASK}@db:5432/x"
    assert redact("https://example.com/a:b@c") == "https://example.com/a:b@c"  # not userinfo


def test_redact_keeps_ordinary_values_and_empty_secrets() -> None:
    plain = {"n_estimators": 100, "ratio": 0.2, "columns": ["a", "b"], "ok": True, "none": None}
    assert redact(plain) == plain
    assert redact({"token": None, "password": ""}) == {"token": None, "password": ""}


def test_redact_handles_arrays_and_models_under_secret_keys() -> None:
    class Params(BaseModel):
        repo: str
        token: str

    assert redact({"token": np.array([1, 2, 3])}) == {"token": MASK}
    assert redact({"params": Params(repo="o/r", token=GITHUB_TOKEN)}) == {"params": {"repo": "o/r", "token": MASK}}


def test_log_line_masks_nested_secrets(log_lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log_lines
    log_event(logger, logging.INFO, "tool call", tool="notify", arguments=nested_arguments())
    logger.info("token in message %s and %s", GITHUB_TOKEN, SLACK_HOOK)
    (event, message) = parsed(stream)
    assert event["msg"] == "tool call" and event["tool"] == "notify" and event["level"] == "info"
    assert event["arguments"]["channels"][0]["webhook_url"] == MASK
    assert message["msg"] == f"token in message {MASK} and {MASK}"
    raw = stream.getvalue()
    for secret in ALL_SECRETS:
        assert secret not in raw


def test_exception_text_is_masked(log_lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log_lines
    try:
        raise RuntimeError(f"push failed with {GITHUB_TOKEN}")
    except RuntimeError:
        logger.exception("unexpected")
    (line,) = parsed(stream)
    assert "RuntimeError" in line["exc"] and "Traceback" in line["exc"]
    assert GITHUB_TOKEN not in stream.getvalue()


def test_every_line_is_valid_json_even_for_odd_values(log_lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log_lines

    class Opaque:
        def __str__(self) -> str:
            return f"Opaque(token={GITHUB_TOKEN})"

    log_event(logger, logging.INFO, "nan", value=float("nan"), inf=float("-inf"))
    log_event(logger, logging.INFO, "tuple keys", mapping={(1, 2): "a", 3: "b"})
    log_event(logger, logging.INFO, "objects", obj=Opaque(), data=b"\x00\xff", arr=np.arange(3))
    log_event(logger, logging.INFO, 'line\nbreaks\tand "quotes"', text="a\nb")
    logger.warning("collision", extra={"fields": {"ts": "fake", "level": "fake", "logger": "fake"}})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    for line in lines:
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    nan, keys, objects, breaks, collision = (json.loads(line) for line in lines)
    assert nan["value"] == "nan" and nan["inf"] == "-inf"
    assert keys["mapping"] == {"(1, 2)": "a", "3": "b"}
    assert objects["obj"] == f"Opaque(token={MASK})"
    assert breaks["msg"] == 'line\nbreaks\tand "quotes"'
    assert collision["level"] == "warning" and collision["logger"] == "tests.logger.json"
    assert collision["ts"] != "fake"


def test_configure_logging_writes_json_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logging.captureWarnings(False)  # a test before may have left it on, bound to its own warning hooks
    try:
        configure_logging("warning")
        logging.getLogger("mcp_server.test").warning("careful", extra={"fields": {"password": PASSWORD}})
        logging.getLogger("mcp_server.test").info("hidden below WARNING")
        logging.getLogger("botocore.test").warning("library record")
        warnings.warn("a library deprecation", UserWarning, stacklevel=1)
        assert logging.getLogger("botocore").level == logging.WARNING
    finally:
        root.handlers[:], root.level = saved
        logging.captureWarnings(False)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [json.loads(line) for line in captured.err.splitlines()]
    assert [(line["logger"], line["msg"]) for line in lines] == [
        ("mcp_server.test", "careful"),
        ("botocore.test", "library record"),
        ("py.warnings", lines[2]["msg"]),
    ]
    assert "UserWarning: a library deprecation" in lines[2]["msg"]
    assert lines[0]["password"] == MASK


def test_redact_masks_every_copy_of_uri_credentials_also_without_the_scheme() -> None:
    message = (
        'Invalid bucket name "AKIDX:s3cr3t-value@hr": s3://AKIDX:s3cr3t-value@hr/k, again s3://AKIDX:s3cr3t-value@hr/j'
    )
    masked = redact(message)
    assert "s3cr3t" not in masked and masked.count(MASK) == 3


def test_redact_masks_values_of_secret_names_quoted_in_messages() -> None:
    text = "got kwargs {'render_mode': None, 'password': '" + PASSWORD + "'} and api_token=abc123 and n_rows=5"
    masked = redact(text)
    assert PASSWORD not in masked and "abc123" not in masked and "n_rows=5" in masked


@pytest.mark.timeout(60)  # a guard against the quadratic scan this test was written for, not a speed target
def test_redact_handles_a_multi_megabyte_argument_and_still_masks_after_it() -> None:
    body = "a" * 3_000_000 + " password='hunter2'"
    assert redact({"payload": body})["payload"].endswith("password='***'")
